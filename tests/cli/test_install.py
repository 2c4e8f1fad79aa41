"""An installed tfchat (a wheel, as `pip install .` or pipx builds it) works with the source tree gone."""
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from support import ROOT

pytestmark = pytest.mark.slow
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache")


def test_a_wheel_carries_the_presets_and_the_model_and_runs_from_anywhere(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--wheel-dir", str(dist), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    [wheel] = dist.glob("tfchat-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        top_level = {name.split("/")[0] for name in archive.namelist() if not name.split("/")[0].endswith(".dist-info")}
        packaged = {name for name in archive.namelist() if name.endswith(".py")}
    assert top_level == {"tfchat"}  # one import name: nothing called core or tui to shadow or be shadowed
    # Every module of the checkout is in the wheel (a sub-package left out of pyproject.toml would not be).
    checkout = {"tfchat/" + str(path.relative_to(ROOT)) for folder in ("core", "tui")
                for path in (ROOT / folder).rglob("*.py")}
    assert checkout - packaged == set()
    shutil.rmtree(source)  # what is installed must not lean on a checkout
    site = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                                str(site), str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "XDG_CONFIG_HOME": str(tmp_path / "c"),
           "XDG_DATA_HOME": str(tmp_path / "d")}
    env.pop("TFCHAT_MODEL", None)

    def tfchat(*args):
        return subprocess.run([str(site / "bin" / "tfchat"), *args], capture_output=True, text=True, env=env,
                              cwd=elsewhere, timeout=120)

    info = tfchat("info")
    assert info.returncode == 0, info.stderr
    assert f"model: {site / 'tfchat' / 'core' / 'model' / 'model.ckpt'}" in info.stdout
    generated = tfchat("generate", "--preset", "book", "--max-new-tokens", "12", "--seed", "1", "--stats",
                       "The key to a successful sale is")
    assert generated.returncode == 0, generated.stderr
    assert '"new_tokens": 12' in generated.stderr and generated.stdout.strip()
    trained = tfchat("train", "--help")
    assert trained.returncode == 0
    helped = tfchat("--help")
    assert helped.returncode == 0 and "usage: tfchat" in helped.stdout
    as_module = subprocess.run([sys.executable, "-m", "tfchat", "info"], capture_output=True, text=True, env=env,
                               cwd=elsewhere, timeout=120)
    assert as_module.returncode == 0 and as_module.stdout == info.stdout, as_module.stderr
    # Installed with plain pip: the serve hint names the packages, not an extra of a package PyPI lacks.
    hint = subprocess.run([sys.executable, "-c", "from tfchat.core.system.install_hint import install_command; "
                           "print(install_command('serve'))"], capture_output=True, text=True, env=env, cwd=elsewhere)
    assert hint.stdout.strip() == "pip install 'starlette>=0.37' 'uvicorn>=0.29'", hint.stderr
    where = subprocess.run([sys.executable, "-c", "import tfchat.core.system.paths as p; print(p.BUILTIN_PRESETS); "
                            "print(p.BUILTIN_TRAIN_CONFIG)"], capture_output=True, text=True, env=env, cwd=elsewhere)
    assert where.stdout.split() == [str(site / "tfchat" / "core" / "configs" / "presets.yaml"),
                                    str(site / "tfchat" / "core" / "configs" / "train.yaml")]
