"""The transcript as Markdown for `/save`: every generation its own block, with what produced it.

A regeneration, a continue (ctrl+g) and a branch from the token cursor each get a block of their own,
with their own preset, parameters, seed and stats; a continue's block holds only the text it added.
"""
from __future__ import annotations

import re

from tfchat.core.engine.stats import GenerationStats
from tfchat.tui.state.branches import GenerationRun
from tfchat.tui.transcript.compare_view import CompareView
from tfchat.tui.transcript.score_view import ScoreView

_RUN_LABELS = {"regenerate": "regenerated", "kept": "kept from a comparison"}


def fenced(text: str) -> str:
    """`text` in a code fence longer than any run of backticks inside it, so it cannot close early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def run_block(number: int, view, branch_index: int, run: GenerationRun, text: str, first: bool) -> str:
    """One generation: a heading that says what it was, its parameters, seed and stats, then its text."""
    what = [_RUN_LABELS.get(run.kind, "")]
    if len(view.branches) > 1:
        what.append(f"branch {branch_index + 1} of {len(view.branches)}")
    if run.kind == "continue":
        what.append("continued")
    heading = " · ".join([label for label in what if label] + [run.preset, run.finish_reason or "running"])
    params = ", ".join(f"{k} {v}" for k, v in run.params.items() if k != "seed" and v not in (None, []))
    lines = [f"## {number}. {heading}", "",
             f"- parameters: {params}" if params else "- parameters: (none recorded)",
             f"- seed: {run.stats.get('seed', run.params.get('seed'))}"]
    figures = GenerationStats.from_dict(run.stats) if run.stats else None
    if figures is not None:
        # The token count with the prompt's beside it, then the other figures as every stats line has them.
        counts = f"{figures.new_tokens} new tokens from {figures.prompt_tokens} prompt tokens"
        lines.append(f"- stats: {', '.join([counts, *figures.figures()[1:]])}")
    lines.append(f"- stopped by the user: {'yes' if run.finish_reason == 'stopped' else 'no'}")
    if first:
        body = f"### Prompt\n\n{fenced(view.prompt)}\n\n### Output\n\n{fenced(text)}\n"
    else:
        body = f"### Continuation of the text above\n\n{fenced(text)}\n"
    return "\n".join(lines) + "\n\n" + body


def exchange_blocks(view, first_number: int) -> list[str]:
    """The blocks of one exchange: each branch's generations, in order."""
    blocks = []
    for branch_index, branch in enumerate(view.branches):
        for index, (run, text) in enumerate(branch.run_texts()):
            blocks.append(run_block(first_number + len(blocks), view, branch_index, run, text, first=index == 0))
    return blocks


def comparison_block(view: CompareView, number: int) -> str:
    """A comparison: the prompt once, then each column with its preset and stats."""
    parts = [f"## {number}. comparison: {', '.join(c.preset for c in view.columns)}\n\n"
             f"### Prompt\n\n{fenced(view.prompt)}\n"]
    for column in view.columns:
        stats = GenerationStats.from_dict(column.stats or {})
        figures = ", ".join([*stats.figures(), f"seed {stats.seed}"]) if stats is not None else "no stats"
        kept = " (kept)" if view.kept is not None and view.columns[view.kept] is column else ""
        parts.append(f"### {column.preset}{kept} · {column.finish_reason or 'running'} · {figures}\n\n"
                     f"{fenced(column.output)}\n")
    return "\n".join(parts)


def transcript_markdown(views: list, model_path) -> str:
    """Every exchange, comparison and scored text in `views`, in order, numbered as blocks."""
    parts = [f"# tfchat transcript\n\nModel: `{model_path}`\n"]
    for view in views:
        number = len(parts)
        if isinstance(view, CompareView):
            parts.append(comparison_block(view, number))
        elif isinstance(view, ScoreView):
            parts.append(f"## {number}. scored text from {view.source}\n\n- {view.branch.summary}\n\n"
                         f"{fenced(view.text)}\n")
        else:
            parts.extend(exchange_blocks(view, number))
    return "\n".join(parts)
