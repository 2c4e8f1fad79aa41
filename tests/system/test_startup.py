"""The start-up clock: seconds since launch, as the app's load line and `bench --startup` report them."""
import json
import subprocess
import sys

import pytest

from tfchat.core.commands.bench.app_startup import one_start
from tfchat.core.system.startup import StartupClock, seconds_since_launch
from support import ROOT


def test_seconds_since_launch_counts_from_the_process_start_not_from_an_import():
    # The interpreter sleeps before it imports the clock: the time slept is part of the wait.
    code = ("import time; time.sleep(0.6)\n"
            "from tfchat.core.system.startup import seconds_since_launch\n"
            "print(seconds_since_launch())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert 0.6 <= float(out.stdout) < 10


def test_the_clock_says_both_moments_once_both_are_known_and_keeps_the_first_of_each():
    clock = StartupClock()
    assert clock.summary() is None
    clock.first_frame()
    first = clock.first_frame_s
    clock.first_frame()  # a second frame is not the first
    assert clock.first_frame_s == first and clock.summary() is None
    clock.ready()
    assert clock.ready_s >= first
    assert clock.summary() == f"ready {clock.ready_s:.1f} s after launch (first frame {first:.1f} s)"
    assert seconds_since_launch() >= clock.ready_s


async def test_the_app_says_its_start_up_in_the_load_line_and_the_inspector(app_factory):
    from support.pilot import notices, ready, shown_text, wait_for
    from tfchat.tui.screens.inspector_screen import InspectorScreen

    app = app_factory()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        loaded = [n for n in notices(app) if n.startswith("Loaded ")]
        assert loaded and "s after launch (first frame " in loaded[0]
        assert app.startup.first_frame_s <= app.startup.ready_s
        await pilot.press("f8")
        await wait_for(pilot, lambda: isinstance(app.screen, InspectorScreen), what="the inspector")
        assert "start-up" in shown_text(app.screen.query_one("#summary"))


@pytest.mark.slow
def test_bench_startup_times_the_real_app_in_a_terminal_and_leaves_nothing_running(small_model, tmp_path):
    command = [sys.executable, "-m", "tfchat", "--model", str(small_model), "--device", "cpu",
               "--history", str(tmp_path / "h.sqlite3")]
    start = one_start(command)
    assert 0 < start.first_frame_s <= start.ready_s < 60
    table = subprocess.run(["ps", "-eo", "sid=,stat="], capture_output=True, text=True).stdout.split("\n")
    running = [line for line in table if line.split()[:1] == [str(start.pid)] and not line.split()[1].startswith("Z")]
    assert not running  # the app and its engine process ended with ctrl+q (a zombie is ended, not yet reaped)


@pytest.mark.slow
def test_bench_startup_reports_both_moments_idle_and_beside_a_busy_neighbour(small_model, capsys):
    from tfchat.core.commands.bench.app_startup import run_startup_bench

    assert run_startup_bench(str(small_model), "cpu", rounds=1) == 0
    out = capsys.readouterr().out
    figures = json.loads(out.strip().splitlines()[-1])["startup"]
    for name in ("idle", "busy"):
        assert 0 < figures[name]["first_frame_s"] <= figures[name]["ready_s"] < 60
    assert "ready, beside a busy neighbour" in out
