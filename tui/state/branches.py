"""An exchange's branches: its first output, and each regeneration from a token the user chose instead.

A branch keeps its text, its tokens' step information, and the segments its
generations wrote (a continue adds one), so each token's text can be found
again even where a stop string cut a generation short.
"""
from __future__ import annotations

import codecs
from dataclasses import dataclass, field

from tfchat.core.decode.step_info import Alternative, StepInfo


def token_spans(steps: list[StepInfo], token_bytes, text_length: int) -> list[tuple[int, int]]:
    """(start, end) of each step's text in the output, clipped to `text_length` (a stop string cut the rest).

    `token_bytes(id)` gives a token's exact bytes.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    spans, at = [], 0
    for step in steps:
        piece = decoder.decode(bytes(token_bytes(step.id)))
        start, at = min(at, text_length), min(at + len(piece), text_length)
        spans.append((start, at))
    return spans


@dataclass
class GenerationRun:
    """One generation's part of a branch: where its text begins, what produced it, how it ended.

    A branch's first generation and each continue (ctrl+g) after it are runs of their own, so a saved
    transcript shows every one with its own seed and stats."""

    start: int  # where its text begins in the branch's output
    kind: str  # the request's kind: 'prompt', 'regenerate', 'continue', 'branch', 'kept'
    preset: str
    params: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    finish_reason: str = ""


@dataclass
class Branch:
    output: str = ""
    steps: list[StepInfo] = field(default_factory=list)
    segments: list[tuple[int, int]] = field(default_factory=list)
    """(where in `output`, where in `steps`) each generation began."""
    summary: str = "…"  # the stats line
    stats: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    finish_reason: str = ""
    tokens: int = 0  # the text's tokens in all: every generation's, and a branch's forced ones
    origin: tuple[int, int] | None = None
    """(branch, step) this one was branched from: at that step it took another token."""
    runs: list[GenerationRun] = field(default_factory=list)

    def run_texts(self) -> list[tuple[GenerationRun, str]]:
        """Each run with the text it wrote."""
        ends = [run.start for run in self.runs[1:]] + [len(self.output)]
        return [(run, self.output[run.start:end]) for run, end in zip(self.runs, ends)]

    def begin_generation(self) -> None:
        self.segments.append((len(self.output), len(self.steps)))

    def spans(self, token_bytes) -> list[tuple[int, int]]:
        """(start, end) of every step's text in `output`."""
        spans: list[tuple[int, int]] = []
        bounds = self.segments + [(len(self.output), len(self.steps))]
        for (text_start, step_start), (text_end, step_end) in zip(bounds, bounds[1:]):
            local = token_spans(self.steps[step_start:step_end], token_bytes, text_end - text_start)
            spans.extend((text_start + a, text_start + b) for a, b in local)
        return spans

    def token_ids(self, upto: int) -> list[int]:
        return [step.id for step in self.steps[:upto]]


def forced_step(step: StepInfo, alternative: Alternative) -> StepInfo:
    """The step as it is in a branch that took `alternative`: the same distribution, another token."""
    return StepInfo(alternative.id, alternative.logprob, alternative.sampled_prob, step.entropy, step.top)


def branch_from(parent: Branch, parent_index: int, step_index: int, alternative: Alternative, params: dict) -> Branch:
    """A new branch whose text, until it is generated, is the parent's tokens before `step_index`."""
    steps = parent.steps[:step_index] + [forced_step(parent.steps[step_index], alternative)]
    # Its one generation streams the forced tokens' text first: its segment starts at step 0.
    return Branch(steps=steps, segments=[(0, 0)], params=params, origin=(parent_index, step_index),
                  tokens=step_index + 1)
