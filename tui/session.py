"""What a generation request is, and the transcript text that continue mode feeds back."""
from __future__ import annotations

from dataclasses import dataclass, field

from core.settings.sampling_params import SamplingParams


@dataclass
class Request:
    kind: str  # 'prompt', 'regenerate', 'continue' or 'branch'
    prompt: str  # what the user typed; empty for 'continue'
    preset: str
    params: SamplingParams
    mode: str  # 'completion' or 'continue', as it was when sent
    recorded: bool = field(default=False, compare=False)  # written to the history already
    ended_by: str | None = field(default=None, compare=False)  # 'quit', 'hangup' or 'terminated'
    # A branch: (exchange view, the branch it starts from, step index, the alternative taken there).
    target: tuple | None = field(default=None, compare=False)


def transcript_text(exchanges: list[tuple[str, str]]) -> str:
    """The session as one text, prompt then continuation, for continue mode.

    The engine crops it to the model's window exactly as the book does.
    """
    return "".join(prompt + output for prompt, output in exchanges)
