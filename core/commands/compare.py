"""`tfchat generate` over several rows: presets compared, or prompts in one pass (the chapter's 20.8 loop).

Rows are every prompt under every preset, decoded in batches of up to
`MAX_ROWS`. Plain output prints each row under a header, in row order, as soon
as it and the rows before it are done; `--format jsonl` prints one object a row.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from tfchat.core.decode.limits import MAX_ROWS
from tfchat.core.errors import PresetError, PromptError
from tfchat.core.settings.presets import PresetCatalog
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.core.system.bounded_read import MAX_PROMPT_BYTES, decoded, read_bounded


@dataclass
class CompareCase:
    preset: str
    prompt: str
    params: SamplingParams

    def header(self, show_preset: bool, show_prompt: bool) -> str:
        parts = ([self.preset] if show_preset else []) + ([f"prompt: {_short(self.prompt)}"] if show_prompt else [])
        return f"== {' · '.join(parts)} =="


def _short(prompt: str, width: int = 60) -> str:
    line = " ".join(prompt.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def compare_presets(value: str, catalog: PresetCatalog) -> list[str]:
    """`--compare a,b,c` (or `all`) as preset names, each checked against the catalog."""
    names = catalog.names() if value.strip() == "all" else [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise PresetError("--compare needs preset names separated by commas, or 'all'")
    for name in names:
        catalog.get(name)  # an unknown name fails with the list of known ones
    return names


def read_prompts_file(path: str) -> list[str]:
    """One prompt a line; blank lines are skipped. Read within MAX_PROMPT_BYTES (a pipe such as `<(command)`
    is read as a file is)."""
    try:
        text = decoded(read_bounded(path, MAX_PROMPT_BYTES, "prompts"), path)
    except PromptError as exc:
        raise PromptError(f"--prompts-file {exc}") from None
    prompts = [line for line in text.splitlines() if line.strip()]
    if not prompts:
        raise PromptError(f"--prompts-file {path}: no prompts in it (one a line)")
    return prompts


def plan_rows(prompts: list[str], presets: list[str], params_for) -> list[CompareCase]:
    """Every prompt under every preset; `params_for(name)` gives a preset's params."""
    return [CompareCase(name, prompt, params_for(name)) for prompt in prompts for name in presets]


def run_rows(engine, rows: list[CompareCase], out, output_format: str, headers: tuple[bool, bool]) -> None:
    """Generate the rows, a batch of up to MAX_ROWS at a time, and print them as they complete in order."""
    for first in range(0, len(rows), MAX_ROWS):
        chunk = rows[first : first + MAX_ROWS]
        batch = engine.generate_batch([r.prompt for r in chunk], [r.params for r in chunk])
        printed = 0
        try:
            for event in batch:
                if event.stats is None:
                    continue
                while printed < len(chunk) and batch.stats[printed] is not None:
                    _print_row(chunk[printed], batch.texts[printed], batch.stats[printed], out, output_format,
                               headers)
                    printed += 1
        finally:  # Ctrl+C: what was generated so far is printed too
            for i in range(printed, len(chunk)):
                if batch.stats[i] is not None:
                    _print_row(chunk[i], batch.texts[i], batch.stats[i], out, output_format, headers)


def _print_row(row: CompareCase, text: str, stats, out, output_format: str, headers: tuple[bool, bool]) -> None:
    if output_format == "jsonl":
        out.write(json.dumps({"preset": row.preset, "prompt": row.prompt, "text": text, "stats": stats.as_dict()},
                             ensure_ascii=False) + "\n")
    else:
        out.write(f"{row.header(*headers)}\n{text}\n\n")
    out.flush()
