"""`/save`: a transcript written whole, never over a file without being asked, one block per generation."""
import os

import pytest

from support.pilot import finished, notices, ready, send, views, wait_for
from tfchat.core.system.files import write_text_atomically
from tfchat.tui.transcript.saved_transcript import fenced


async def test_save_refuses_an_existing_file_and_save_bang_replaces_it(app_factory, tmp_path):
    target = tmp_path / "t.md"
    target.write_text("an earlier transcript, 6 KB of it\n")
    app = app_factory(preset="greedy")
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, f"/save {target}")  # the transcript is empty
        assert notices(app)[-1] == "/save: nothing to save: the transcript has no exchange yet"
        await send(pilot, "/set max_new_tokens 3")
        await send(pilot, "Keep this")
        await finished(pilot, 1)
        await send(pilot, f"/save {target}")
        assert notices(app)[-1] == f"/save: {target} exists; nothing saved (/save! {target} replaces it)"
        assert target.read_text() == "an earlier transcript, 6 KB of it\n"
        await send(pilot, f"/save! {target}")
        assert notices(app)[-1] == f"Saved the transcript to {target}"
    saved = target.read_text()
    assert "Keep this" in saved and "earlier" not in saved
    assert [name for name in os.listdir(tmp_path) if name.endswith(".tmp")] == []


async def test_save_writes_each_regeneration_and_continue_as_its_own_block_with_its_seed(app_factory, tmp_path):
    app = app_factory(preset="balanced")
    async with app.run_test() as pilot:
        await ready(pilot)
        await send(pilot, "/set max_new_tokens 4")
        await send(pilot, "/set seed 7")
        await send(pilot, "Code ```x``` then")
        await finished(pilot, 1)
        await send(pilot, "/set seed 8")
        await pilot.press("ctrl+r")
        await finished(pilot, 2)
        await wait_for(pilot, lambda: views(app)[1].finish_reason, what="the regeneration's end")
        await send(pilot, "/set seed 9")
        await send(pilot, "/set max_new_tokens 2")
        regenerated = views(app)[1].output
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: views(app)[1].output != regenerated and app.chat.session.active is None,
                       what="the continue")
        continued = views(app)[1].output[len(regenerated):]
        await send(pilot, f"/save {tmp_path / 's.md'}")
    saved = (tmp_path / "s.md").read_text()
    blocks = saved.split("\n## ")[1:]
    assert [block.split("\n")[0] for block in blocks] == [
        "1. balanced · length", "2. regenerated · balanced · length", "3. continued · balanced · length"]
    assert ["- seed: 7" in blocks[0], "- seed: 8" in blocks[1], "- seed: 9" in blocks[2]] == [True] * 3
    assert "4 new tokens" in blocks[0] and "4 new tokens" in blocks[1] and "2 new tokens" in blocks[2]
    assert f"### Output\n\n{fenced(regenerated)}\n" in blocks[1]
    assert f"### Continuation of the text above\n\n{fenced(continued)}\n" in blocks[2] and "Code" not in blocks[2]
    # The prompt holds a run of three backticks: its fence is longer, so it cannot close early.
    assert "````text\nCode ```x``` then\n````" in blocks[0]


def test_an_interrupted_write_leaves_the_earlier_file_whole(tmp_path):
    target = tmp_path / "t.md"
    target.write_text("kept\n")
    with pytest.raises(UnicodeEncodeError):  # fails midway, after part of the text went out
        write_text_atomically(target, "new text " * 1000 + "\udcff")
    assert target.read_text() == "kept\n" and os.listdir(tmp_path) == ["t.md"]
    write_text_atomically(target, "replaced\n")
    assert target.read_text() == "replaced\n" and os.listdir(tmp_path) == ["t.md"]
