"""Driving the real app under Textual's Pilot: waiting for states, reading what it shows."""
import sqlite3
import time

from tfchat.tui.transcript.compare_view import CompareView
from tfchat.tui.widgets.prompt_input import PromptInput
from tfchat.tui.widgets.status_line import StatusLine
from tfchat.tui.transcript.pane import Notice, Transcript


async def wait_for(pilot, condition, timeout=30.0, what="condition"):
    """Poll instead of sleeping a fixed time, so slow machines only wait longer."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def views(app):
    return app.query_one(Transcript).exchanges()


def shown_text(widget) -> str:
    """A widget's lines as drawn on the screen, wrapped as they are there."""
    return "\n".join(widget.render_line(y).text for y in range(widget.size.height))


def notices(app):
    return [n.plain for n in app.query(Notice)]


async def ready(pilot):
    await wait_for(pilot, lambda: pilot.app.query_one(StatusLine).state == "ready", what="engine ready")


async def send(pilot, text):
    prompt = pilot.app.query_one(PromptInput)
    prompt.focus()
    prompt.load_text(text)
    await pilot.press("enter")


async def finished(pilot, count):
    await wait_for(pilot, lambda: len(views(pilot.app)) >= count and pilot.app.chat.session.active is None
                   and not pilot.app.chat.session.pending, what=f"{count} finished exchanges")


def history_rows(path):
    with sqlite3.connect(path) as db:
        return db.execute("SELECT kind, prompt, output, preset, finish_reason, stats FROM exchanges ORDER BY id").fetchall()


def compare_views(app):
    return list(app.query(CompareView))


async def compared(pilot, count=1):
    await wait_for(pilot, lambda: len(compare_views(pilot.app)) >= count and pilot.app.chat.session.active is None
                   and not pilot.app.chat.session.pending, what=f"{count} finished comparisons")


async def stream_then_compare(pilot, prompt: str, tokens: int):
    """The everyday flow over a server: `prompt` streamed under the greedy preset (`tokens` new tokens),
    then "Hello" compared under greedy and book. Returns the exchange's view and the comparison's."""
    await ready(pilot)
    await send(pilot, f"/set max_new_tokens {tokens}")
    await send(pilot, prompt)
    await finished(pilot, 1)
    await send(pilot, "/compare greedy book")
    await send(pilot, "Hello")
    await compared(pilot)
    return views(pilot.app)[0], compare_views(pilot.app)[0]
