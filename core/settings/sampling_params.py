"""The generation settings: what a preset holds and a request asks for. Plain Python, no torch,
so the app's process can build and check them without loading it."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

from tfchat.core.errors import PresetError

# Below this a temperature divides float32 logits into infinities; 0 is greedy.
MIN_TEMPERATURE = 1e-6
# A penalty outside this range turns logits into infinities or zeros.
PENALTY_RANGE = (0.01, 100.0)
MAX_SEED = 2**64 - 1  # what torch.Generator.manual_seed takes
WINDOW_POLICIES = ("book", "shift")
END_OF_TEXT_POLICIES = ("stop", "ignore")
DRAFT_POLICIES = ("auto", "context", "corpus", "off")
# The most new tokens a preset or a flag may ask for: a typo of 10**12 is refused, not run until killed.
# 0 asks for no limit: the generation goes on until it is stopped (esc, Ctrl+C, a stop string, end of text).
MAX_NEW_TOKENS = 1_000_000

@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0
    """0 means greedy: always the most likely token."""
    top_k: int | None = None
    """Keep the k most likely tokens (ties at the k-th kept); None or 0 keeps all."""
    top_p: float = 1.0
    """Keep the smallest set whose probability reaches p; 1.0 keeps all."""
    min_p: float = 0.0
    """Drop tokens below min_p times the top probability; 0 keeps all."""
    repetition_penalty: float = 1.0
    """Above 1 discourages tokens already in the context window; 1.0 is off."""
    max_new_tokens: int = 200
    seed: int | None = None
    """Fixed seed for reproducible sampling; None draws a fresh one."""
    stop: tuple[str, ...] = field(default_factory=tuple)
    """Strings that end the generation; the stop string itself is not shown."""
    window: str = "book"
    """Past the context window: 'book' crops to the last context_length tokens every step, exactly as the
    book does (each step recomputes the window); 'shift' keeps the last half of the window when it fills,
    recomputes that once and decodes on with the cache (faster, but not the book's text)."""
    end_of_text: str = "stop"
    """A model with an end-of-text token (GPT-2's <|endoftext|>): 'stop' ends the text there, 'ignore'
    goes on past it to max_new_tokens, showing it. The book's model has none."""
    draft: str = "auto"
    """Drafted tokens, verified exactly (`core.decode.drafting`): from the context and the training text
    (auto), one of them, or off. Only the speed changes, never the text."""

    def __post_init__(self):
        for problem in validate_values(self):
            raise PresetError(problem)

    def with_changes(self, **changes) -> "SamplingParams":
        return replace(self, **changes)

    @property
    def token_limit(self) -> int | None:
        """The most new tokens to generate; None for no limit (max_new_tokens 0)."""
        return self.max_new_tokens or None

    def as_dict(self) -> dict:
        return {f.name: (list(self.stop) if f.name == "stop" else getattr(self, f.name)) for f in fields(self)}


PARAM_NAMES = tuple(f.name for f in fields(SamplingParams))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_values(p: SamplingParams) -> list[str]:
    """Problems with the values, each naming its key; empty when all are sound."""
    problems = []
    if not _is_number(p.temperature) or p.temperature < 0 or 0 < p.temperature < MIN_TEMPERATURE:
        problems.append(f"temperature must be 0 (greedy) or a number >= {MIN_TEMPERATURE:g}, got {_short(p.temperature)}")
    if p.top_k is not None and (not _is_int(p.top_k) or p.top_k < 0):
        problems.append(f"top_k must be an integer >= 0 (0 = off), got {_short(p.top_k)}")
    if not _is_number(p.top_p) or not 0 < p.top_p <= 1:
        problems.append(f"top_p must be in (0, 1], got {_short(p.top_p)}")
    if not _is_number(p.min_p) or not 0 <= p.min_p <= 1:
        problems.append(f"min_p must be in [0, 1], got {_short(p.min_p)}")
    low, high = PENALTY_RANGE
    if not _is_number(p.repetition_penalty) or not low <= p.repetition_penalty <= high:
        problems.append(f"repetition_penalty must be between {low:g} and {high:g} (1 = off), "
                        f"got {_short(p.repetition_penalty)}")
    if not _is_int(p.max_new_tokens) or not 0 <= p.max_new_tokens <= MAX_NEW_TOKENS:
        problems.append(f"max_new_tokens must be an integer from 1 to {MAX_NEW_TOKENS:,} (0: until stopped), "
                        f"got {_short(p.max_new_tokens)}")
    if p.seed is not None and (not _is_int(p.seed) or not 0 <= p.seed <= MAX_SEED):
        problems.append(f"seed must be an integer from 0 to 2**64-1, got {_short(p.seed)}")
    if p.end_of_text not in END_OF_TEXT_POLICIES:
        problems.append(f"end_of_text must be 'stop' or 'ignore', got {_short(p.end_of_text)}")
    if p.draft not in DRAFT_POLICIES:
        problems.append(f"draft must be one of {', '.join(DRAFT_POLICIES)}, got {_short(p.draft)}")
    if p.window not in WINDOW_POLICIES:
        problems.append(f"window must be 'book' or 'shift', got {_short(p.window)}")
    if not isinstance(p.stop, tuple) or not all(isinstance(s, str) and s for s in p.stop):
        problems.append(f"stop must be a list of non-empty strings, got {_short(p.stop)}")
    return problems


def _short(value) -> str:
    """A value as it appears in a message: its repr, never more than 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
