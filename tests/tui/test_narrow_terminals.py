"""The token cursor, its logit lens and the attention view in small terminals, through tmux as a person sees them."""
import re
import shutil

import pytest

from support.tmux import TmuxApp, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]

PROMPT = "The customer wants value and the salesperson listens"


@pytest.mark.parametrize("size", [(60, 20), (70, 20), (80, 24)])
def test_the_token_cursor_lens_and_attention_keep_a_text_column_of_30_down_to_60_columns(small_model, tmp_path,
                                                                                          size):
    app = TmuxApp(small_model, tmp_path / "history.sqlite3", tmp_path, size=size)
    try:
        app.wait_for("● ready")
        app.send("/set max_new_tokens 8")
        app.send(PROMPT)
        app.wait_for("tok/s")
        app.keys("F5")
        screen = app.wait_for("Tokens · token 8 of 8")
        # The panel went below the text: the prompt reads on one line at least 30 columns wide
        # (beside a 64-column panel, 80 columns left it 14: 'Cust / omer / s or').
        assert any(line.lstrip().startswith(PROMPT[:30]) for line in screen.splitlines()), screen
        assert "candidate" in screen and "model" in screen
        app.keys("l")
        screen = app.wait_for(lambda shown: re.search(r"^\s+output\s+'", shown, re.M))  # the lens's last row in sight
        assert "logit lens" in screen and any(line.lstrip().startswith(PROMPT[:30]) for line in screen.splitlines())
        assert all(len(line.rstrip()) <= size[0] for line in screen.splitlines())
        app.keys("a")
        screen = app.wait_for("L1 H3")  # every layer·head row of the small model (2 blocks, 4 heads)
        assert "Attention" in screen and "L0 H0" in screen
        app.keys("Escape")
        app.wait_for("Tokens ·")
        app.keys("Escape")
        app.wait_for("● ready")
        app.keys("C-q")
        wait_until(app.dead, "tfchat did not quit on ctrl+q")
    finally:
        app.close()
