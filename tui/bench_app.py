"""`tfchat bench --app`: tokens/s inside the app against headless generation, same model and preset.

The app runs headless under Textual's test driver, which still lays out and
renders every batch of streamed text, so the figure includes the UI's cost.
The app records each token's probabilities and alternatives (for the
probability view and the token cursor), so headless generation is measured
both with that trace and without it: the first ratio is the UI's cost, the
second the UI's and the trace's together. With a corpus, the app is measured again with the overlap view
(f12) open while the text streams: its cost is the ratio of the two app figures.
"""
from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from tfchat.core.engine.in_process import Engine
from tfchat.core.settings.presets import load_presets, params_from_mapping
from tfchat.core.store.history import History
from tfchat.core.system.paths import resolve_model_path
from tfchat.tui.app import make_app
from tfchat.tui.transcript.exchange_view import TOP_LOGPROBS
from tfchat.tui.widgets.prompt_input import PromptInput

PROMPT = "The most important skill in sales is"


def headless_rate(engine: Engine, params, top_logprobs: int = 0) -> float:
    generation = engine.generate(PROMPT, params, top_logprobs=top_logprobs)
    for _ in generation:
        pass
    return generation.stats.tokens_per_s


async def app_rate(model: Path, device: str, preset: str, tokens: int, seed: int, history: Path,
                   corpus: str | None = None) -> float:
    """Tokens/s of one generation in the app; with `corpus`, the overlap view open on it as it streams."""
    app = make_app(str(model), device, preset, str(history), corpus=corpus)
    async with app.run_test(size=(100, 30)) as pilot:
        while app.chat.engine is None or (corpus and not app.chat.corpus.ready()):
            if app.chat.backend_state.unavailable or (corpus and app.chat.corpus.problem):
                raise SystemExit(f"tfchat: the app could not load the model or the corpus "
                                 f"({app.chat.corpus.problem or 'the model'})")
            await pilot.pause(0.02)
        app.chat.presets.overrides[preset] = {"max_new_tokens": tokens, "seed": seed}
        prompt = app.query_one(PromptInput)
        prompt.load_text(PROMPT)
        prompt.focus()
        await pilot.press("enter")
        if corpus:
            while not app.query_one("Transcript").exchanges():
                await pilot.pause(0.01)
            await pilot.press("f12")
        while app.chat.session.active is not None or app.chat.session.pending or not app.query_one("Transcript").exchanges():
            await pilot.pause(0.02)
    store = History(history)
    rate = store.recent(1)[0].stats["tokens_per_s"]
    store.close()
    return rate


def run_app_bench(model_arg: str | None, device: str, preset: str = "balanced", tokens: int = 400,
                  repeats: int = 3, corpus: str | None = None) -> int:
    model = resolve_model_path(model_arg)
    engine = Engine.load(model, device)
    params = params_from_mapping({"max_new_tokens": tokens, "seed": 1}, load_presets().get(preset).params)
    headless, traced, in_app, with_view = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):  # interleaved, so drift on a noisy machine hits all alike
            headless.append(headless_rate(engine, params))
            traced.append(headless_rate(engine, params, TOP_LOGPROBS))
            in_app.append(asyncio.run(app_rate(model, device, preset, tokens, 1, Path(tmp) / f"h{i}.sqlite3")))
            if corpus:
                with_view.append(asyncio.run(app_rate(model, device, preset, tokens, 1, Path(tmp) / f"v{i}.sqlite3",
                                                      corpus)))
            time.sleep(0.2)
    result = {
        "model": str(model), "device": str(engine.device), "preset": preset, "new_tokens": tokens,
        "headless_tokens_per_s": round(statistics.median(headless), 1),
        "headless_traced_tokens_per_s": round(statistics.median(traced), 1),
        "app_tokens_per_s": round(statistics.median(in_app), 1),
    }
    result["app_over_headless_traced"] = round(result["app_tokens_per_s"] / result["headless_traced_tokens_per_s"], 3)
    result["app_over_headless"] = round(result["app_tokens_per_s"] / result["headless_tokens_per_s"], 3)
    if with_view:
        result["app_overlap_view_tokens_per_s"] = round(statistics.median(with_view), 1)
        result["overlap_view_over_app"] = round(result["app_overlap_view_tokens_per_s"] / result["app_tokens_per_s"], 3)

    def runs(rates: list[float]) -> str:
        return f"(runs: {', '.join(f'{r:.0f}' for r in rates)})"

    print(f"headless generate            {result['headless_tokens_per_s']:.1f} tok/s  {runs(headless)}")
    print(f"headless, with the app trace {result['headless_traced_tokens_per_s']:.1f} tok/s  {runs(traced)}")
    print(f"inside the app               {result['app_tokens_per_s']:.1f} tok/s  {runs(in_app)}")
    print(f"app / headless with trace    {result['app_over_headless_traced'] * 100:.0f}%  (the UI's cost)")
    print(f"app / headless               {result['app_over_headless'] * 100:.0f}%  (the UI's and the trace's)")
    if with_view:
        print(f"the app, overlap view open   {result['app_overlap_view_tokens_per_s']:.1f} tok/s  {runs(with_view)}  "
              f"({result['overlap_view_over_app'] * 100:.1f}% of the app's)")
    print(json.dumps(result))
    return 0
