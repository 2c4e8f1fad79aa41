"""`tfchat bench --app`: tokens/s inside the app against headless generation, same model and preset.

The app runs headless under Textual's test driver, which still lays out and
renders every batch of streamed text, so the figure includes the UI's cost.
"""
from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from core.engine import Engine
from core.history import History
from core.paths import resolve_model_path
from core.presets import load_presets, params_from_mapping
from tui.app import make_app
from tui.prompt_input import PromptInput

PROMPT = "The most important skill in sales is"


def headless_rate(engine: Engine, params) -> float:
    generation = engine.generate(PROMPT, params)
    for _ in generation:
        pass
    return generation.stats.tokens_per_s


async def app_rate(model: Path, device: str, preset: str, tokens: int, seed: int, history: Path) -> float:
    app = make_app(str(model), device, preset, str(history))
    async with app.run_test(size=(100, 30)) as pilot:
        while app.engine is None:
            if app.query_one("StatusLine").state in ("failed", "no model"):
                raise SystemExit("tfchat: the app could not load the model")
            await pilot.pause(0.02)
        app.overrides[preset] = {"max_new_tokens": tokens, "seed": seed}
        prompt = app.query_one(PromptInput)
        prompt.load_text(PROMPT)
        prompt.focus()
        await pilot.press("enter")
        while app.active is not None or app.pending or not app.query_one("Transcript").exchanges():
            await pilot.pause(0.02)
    store = History(history)
    rate = store.recent(1)[0].stats["tokens_per_s"]
    store.close()
    return rate


def run_app_bench(model_arg: str | None, device: str, preset: str = "balanced", tokens: int = 400,
                  repeats: int = 3) -> int:
    model = resolve_model_path(model_arg)
    engine = Engine.load(model, device)
    params = params_from_mapping({"max_new_tokens": tokens, "seed": 1}, load_presets().get(preset).params)
    headless, in_app = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):  # interleaved, so drift on a noisy machine hits both alike
            headless.append(headless_rate(engine, params))
            in_app.append(asyncio.run(app_rate(model, device, preset, tokens, 1, Path(tmp) / f"h{i}.sqlite3")))
            time.sleep(0.2)
    result = {
        "model": str(model), "device": str(engine.device), "preset": preset, "new_tokens": tokens,
        "headless_tokens_per_s": round(statistics.median(headless), 1),
        "app_tokens_per_s": round(statistics.median(in_app), 1),
    }
    result["app_over_headless"] = round(result["app_tokens_per_s"] / result["headless_tokens_per_s"], 3)
    print(f"headless generate  {result['headless_tokens_per_s']:.1f} tok/s  (runs: {', '.join(f'{r:.0f}' for r in headless)})")
    print(f"inside the app     {result['app_tokens_per_s']:.1f} tok/s  (runs: {', '.join(f'{r:.0f}' for r in in_app)})")
    print(f"app / headless     {result['app_over_headless'] * 100:.0f}%")
    print(json.dumps(result))
    return 0
