"""The engine child writes nothing on the terminal the app's UI draws: its output goes to engine.log."""
import os
import subprocess
import sys
from pathlib import Path

from tfchat.core.engine.engine_process import EngineProcess
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.core.system.child_output import engine_log_file

ROOT = Path(__file__).resolve().parents[2]


def test_output_sent_to_the_log_leaves_the_terminal_untouched_even_from_the_descriptors(tmp_path):
    log = tmp_path / "state" / "engine.log"
    script = ("import os, sys\n"
              "from pathlib import Path\n"
              "from tfchat.core.system.child_output import send_output_to_log\n"
              f"print(send_output_to_log(Path({str(log)!r})))\n"
              "print('from print'); sys.stdout.flush()\n"
              "os.write(2, b'from the descriptor, as torch C++ code writes\\n')\n"
              "import warnings; warnings.warn('from the warnings module')\n")
    # The warnings module's own filters, not the user's: PYTHONWARNINGS=ignore would silence the warning tested.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    run = subprocess.run([sys.executable, "-W", "default", "-c", script], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env=env)
    assert run.returncode == 0
    assert (run.stdout, run.stderr) == ("", "")
    written = log.read_text()
    assert str(log) in written and "from print" in written
    assert "from the descriptor, as torch C++ code writes" in written and "from the warnings module" in written


def test_the_engine_process_keeps_its_output_in_the_state_folder(small_model):
    engine = EngineProcess.load(small_model, "cpu")
    try:
        assert "".join(engine.generate("Once upon", SamplingParams(temperature=0.0, max_new_tokens=4)))
        pid = engine.child_pid
    finally:
        engine.close()
    assert f"tfchat engine process {pid}" in engine_log_file().read_text()
    assert engine_log_file().parent == Path(os.environ["XDG_STATE_HOME"]) / "tfchat"
