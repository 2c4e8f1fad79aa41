"""What a generation request is, one type per kind, and the transcript text continue mode feeds back."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from tfchat.core.decode.step_info import Alternative
from tfchat.core.settings.sampling_params import SamplingParams


@dataclass
class Request:
    """What every request carries; `kind` is the word the history stores."""

    kind: ClassVar[str]
    kept_in_history: ClassVar[bool] = True
    prompt: str  # what the user typed; empty for a continuation
    preset: str
    params: SamplingParams
    mode: str  # 'completion' or 'continue', as it was when sent
    recorded: bool = field(default=False, compare=False)  # written to the history already
    ended_by: str | None = field(default=None, compare=False)  # 'quit', 'hangup' or 'terminated'

    def recorded_prompt(self) -> str:
        """The prompt the history stores for it (and finds it by)."""
        return self.prompt


@dataclass
class PromptRequest(Request):
    kind: ClassVar[str] = "prompt"


@dataclass
class RegenerateRequest(Request):
    """The last prompt sent again (ctrl+r)."""

    kind: ClassVar[str] = "regenerate"


@dataclass
class ContinueRequest(Request):
    """More of the last exchange's text (ctrl+g)."""

    kind: ClassVar[str] = "continue"
    continues: str = field(default="", compare=False)  # the prompt of the exchange it goes on from, once started

    def recorded_prompt(self) -> str:
        return self.continues


@dataclass
class BranchRequest(Request):
    """A new branch of the exchange numbered `exchange`: `parent`'s tokens up to `step_index`, then `alternative`."""

    kind: ClassVar[str] = "branch"
    exchange: int = 0  # the exchange's number in the transcript (`ExchangeView.number`)
    parent: int = 0
    step_index: int = 0
    alternative: Alternative | None = None


@dataclass
class CompareRequest(Request):
    """One prompt under several presets at once; `params` is the first column's."""

    kind: ClassVar[str] = "compare"
    presets: list[str] = field(default_factory=list)
    blind: bool = False
    column_params: list[SamplingParams] = field(default_factory=list)
    # Comparing models (`/compare --models`): a column per model (by its name on the shelf), under the one
    # preset; None compares presets on the active model.
    models: list[str] | None = None
    model_slots: list[int] = field(default_factory=list)  # those models' places on the shelf (names may repeat)


@dataclass
class ScoreRequest(Request):
    """The model's surprise at a text (`/score`): `prompt` is the text, `source` where it came from."""

    kind: ClassVar[str] = "score"
    kept_in_history: ClassVar[bool] = False  # nothing was generated: the text is the user's own
    source: str = "the prompt box"
    off: tuple[tuple[int, int], ...] = ()  # heads switched off: the loss is shown against all heads on


def transcript_text(exchanges: list[tuple[str, str]]) -> str:
    """The session as one text, prompt then continuation, for continue mode.

    The engine crops it to the model's window exactly as the book does.
    """
    return "".join(prompt + output for prompt, output in exchanges)
