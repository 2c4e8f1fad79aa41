"""Fuzzed model files: thousands of mutated safetensors files, config.json and tokenizer files, each read as
tfchat reads them. Every one loads, or is refused with tfchat's own error (one line, exit 2 from the command):
never another exception (exit 1, a traceback), never a hang, never a large allocation.

The mutations are seeded: a failure names its case, and the same case comes back on every run."""
import json
import random
import resource
import struct

import pytest
import torch

from support.cli import tfchat

from tfchat.core.errors import TfchatError
from tfchat.core.nn.checkpoint import load_checkpoint
from tfchat.core.nn.safetensors_file import read_safetensors, write_safetensors

CASES = 1500
MEMORY_GROWTH_CEILING_MB = 1024


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def mutated(data: bytes, rng: random.Random) -> bytes:
    """One of: bytes flipped, cut, repeated, inserted, or a number in the text swapped for an extreme one."""
    data = bytearray(data)
    kind = rng.randrange(6)
    if kind == 0:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 1:
        del data[rng.randrange(len(data)):]
    elif kind == 2:
        at = rng.randrange(len(data))
        data[at:at] = data[at: at + rng.randint(1, 64)] * rng.randint(2, 50)
    elif kind == 3:
        at = rng.randrange(len(data))
        data[at:at] = bytes(rng.choice(b'{}[]",:0123456789-eE.nN') for _ in range(rng.randint(1, 40)))
    elif kind == 4:
        digits = [i for i, b in enumerate(data) if chr(b).isdigit()]
        if digits:
            at = rng.choice(digits)
            data[at: at + 1] = rng.choice([b"9" * 5000, b"-1", b"1e308", b"NaN", b"Infinity", b"18446744073709551616",
                                           b"[" * 5000, b"0.5", b"true", b'"x"', b"null"])
    else:
        cut = rng.randrange(len(data))
        data = data[cut:] + data[:cut]
    return bytes(data)


def tally(load, outcomes: dict, what: str, detail: str = "") -> None:
    """Run `load()`: it loads (counted), or is refused in one line (a TfchatError, counted); anything else fails
    the test, naming `what` (a Rust panic in the tokenizers library is a BaseException in Python)."""
    try:
        load()
        outcomes["loaded"] += 1
    except TfchatError as exc:
        assert "\n" not in str(exc), f"{what}: {exc}"
        outcomes["refused"] += 1
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - the point of the test
        pytest.fail(f"{what}: {type(exc).__name__}: {exc}{detail}")


def safetensors_seed(tmp_path) -> bytes:
    path = tmp_path / "seed.safetensors"
    write_safetensors(path, {"a.weight": torch.randn(4, 3), "b.bias": torch.randn(3).half(),
                             "c": torch.arange(6, dtype=torch.int64).reshape(2, 3)}, {"format": "pt"})
    return path.read_bytes()


def test_mutated_safetensors_files_load_or_are_refused_in_one_line(tmp_path):
    seed, rng, path = safetensors_seed(tmp_path), random.Random(1), tmp_path / "fuzzed.safetensors"
    header_length = struct.unpack("<Q", seed[:8])[0]
    outcomes, start = {"loaded": 0, "refused": 0}, peak_mb()
    for case in range(CASES):
        if case % 2:  # half of them mutate the header's JSON alone, with a true length
            header = mutated(seed[8: 8 + header_length], rng)
            data = struct.pack("<Q", len(header)) + header + seed[8 + header_length:]
        else:
            data = mutated(seed, rng)
        path.write_bytes(data)
        tally(lambda: read_safetensors(path), outcomes, f"case {case}", f" (bytes {data[:120]!r})")
    assert outcomes["refused"] > CASES // 2 and outcomes["loaded"] > 0
    assert peak_mb() - start < MEMORY_GROWTH_CEILING_MB


def exported_folder(tmp_path, make_checkpoint):
    folder = tmp_path / "exported"
    r = tfchat("export", "--model", str(make_checkpoint(d_model=16, num_heads=2, num_blocks=1, context_length=8,
                                                          vocab_size=300)), str(folder))
    assert r.returncode == 0, r.stderr
    return folder


def test_mutated_config_json_loads_or_is_refused_in_one_line(tmp_path, make_checkpoint):
    folder = exported_folder(tmp_path, make_checkpoint)
    seed, rng = (folder / "config.json").read_bytes(), random.Random(2)
    outcomes, start = {"loaded": 0, "refused": 0}, peak_mb()
    for case in range(CASES // 3):
        data = mutated(seed, rng)
        (folder / "config.json").write_bytes(data)
        tally(lambda: load_checkpoint(folder), outcomes, f"case {case}", f" (bytes {data[:160]!r})")
    assert outcomes["refused"] > 0 and outcomes["loaded"] > 0
    assert peak_mb() - start < MEMORY_GROWTH_CEILING_MB


def test_mutated_tokenizer_files_load_or_are_refused_in_one_line(tmp_path):
    pytest.importorskip("transformers")
    from test_gpt2 import make_gpt2

    from tfchat.core.engine.folder_tokenizer import FolderTokenizer

    folder = tmp_path / "gpt2"
    make_gpt2(folder)
    seeds = {name: (folder / name).read_bytes() for name in ("tokenizer.json", "tokenizer_config.json")}
    rng, outcomes = random.Random(3), {"loaded": 0, "refused": 0}
    for case in range(CASES // 3):
        name = rng.choice(sorted(seeds))
        data = mutated(seeds[name], rng)
        (folder / name).write_bytes(data)
        tally(lambda: FolderTokenizer(folder).encode("Hello there"), outcomes, f"case {case} ({name})")
        (folder / name).write_bytes(seeds[name])
    assert outcomes["refused"] > 0 and outcomes["loaded"] > 0


@pytest.mark.slow
def test_mutated_files_through_the_command_end_in_0_or_2_with_one_line(tmp_path, make_checkpoint):
    """A sample of the above through `tfchat info`, as a user meets them: exit 0 or 2, one line, no traceback."""
    folder = exported_folder(tmp_path, make_checkpoint)
    seeds = {name: (folder / name).read_bytes() for name in ("config.json", "model.safetensors")}
    rng = random.Random(4)
    for case in range(12):
        name = sorted(seeds)[case % 2]
        (folder / name).write_bytes(mutated(seeds[name], rng))
        r = tfchat("info", "--model", str(folder))
        assert r.returncode in (0, 2) and "Traceback" not in r.stderr, f"case {case}: {r.stderr}"
        if r.returncode == 2:
            assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        (folder / name).write_bytes(seeds[name])
    assert json.loads((folder / "config.json").read_text())  # the seed is back: nothing else was touched
