"""Loading: the book's files load as they are; anything else is one clear line naming the file."""
import os
import pickle

import pytest
import torch

from tfchat.core.nn.checkpoint import expected_shapes, load_checkpoint
from tfchat.core.errors import CheckpointError
from support.reference import random_book_checkpoint


def test_a_book_checkpoint_loads_with_its_config(make_checkpoint):
    path = make_checkpoint(d_model=30, num_heads=5, num_blocks=3, context_length=12, vocab_size=777)
    ckpt = load_checkpoint(path)
    c = ckpt.config
    assert (c.d_model, c.num_heads, c.num_blocks, c.context_length, c.vocab_size) == (30, 5, 3, 12, 777)
    assert set(ckpt.state_dict) == set(expected_shapes(c))


def test_a_checkpoint_saved_on_a_gpu_device_string_opens_on_cpu(tmp_path):
    ckpt = random_book_checkpoint(24, 3, 1, 8, 100)
    ckpt["h_params"]["device"] = "cuda"
    path = tmp_path / "gpu.ckpt"
    torch.save(ckpt, path)
    assert load_checkpoint(path).config.vocab_size == 100


def _save(tmp_path, obj, name="bad.ckpt"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="nope.ckpt: no such file"):
        load_checkpoint(tmp_path / "nope.ckpt")


def test_truncated_file(tmp_path, make_checkpoint):
    path = make_checkpoint()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=f"{path.name}: not a readable PyTorch checkpoint"):
        load_checkpoint(path)


def test_garbage_file(tmp_path):
    path = tmp_path / "noise.ckpt"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match="noise.ckpt: not a readable PyTorch checkpoint"):
        load_checkpoint(path)


class Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_file_with_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"model_state_dict": {}, "h_params": {}, "x": Payload()}, path)
    with pytest.raises(CheckpointError, match=r"evil.ckpt: refused, it asks to load Python code \(posix.system\)"):
        load_checkpoint(path)
    plain = tmp_path / "evil.pkl"
    plain.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(CheckpointError, match="evil.pkl"):
        load_checkpoint(plain)


def test_foreign_layout(tmp_path):
    path = _save(tmp_path, {"state_dict": {}, "config": {}})
    with pytest.raises(CheckpointError, match="not a model checkpoint"):
        load_checkpoint(path)


def test_missing_h_param(tmp_path):
    ckpt = random_book_checkpoint(24, 3, 1, 8, 100)
    del ckpt["h_params"]["num_heads"]
    with pytest.raises(CheckpointError, match="h_params lacks num_heads"):
        load_checkpoint(_save(tmp_path, ckpt))


def test_h_params_disagreeing_with_tensors(tmp_path):
    ckpt = random_book_checkpoint(24, 3, 1, 8, 100)
    ckpt["h_params"]["max_token_value"] = 120
    with pytest.raises(CheckpointError, match=r"token_embedding_lookup_table.weight has shape \[100, 24\] but h_params imply \[120, 24\]"):
        load_checkpoint(_save(tmp_path, ckpt))


def test_wrong_keys(tmp_path):
    ckpt = random_book_checkpoint(24, 3, 1, 8, 100)
    ckpt["model_state_dict"]["lm_head.weight"] = ckpt["model_state_dict"].pop("model_out_linear_layer.weight")
    with pytest.raises(CheckpointError, match="missing 1 tensor.*model_out_linear_layer.weight.*unexpected.*lm_head"):
        load_checkpoint(_save(tmp_path, ckpt))


def test_impossible_h_params(tmp_path):
    ckpt = random_book_checkpoint(24, 3, 1, 8, 100)
    ckpt["h_params"]["num_heads"] = 5
    with pytest.raises(CheckpointError, match="d_model 24 is not divisible by num_heads 5"):
        load_checkpoint(_save(tmp_path, ckpt))


def test_nan_weights(tmp_path):
    ckpt = random_book_checkpoint(24, 3, 1, 8, 100)
    ckpt["model_state_dict"]["transformer_blocks.0.ln1.weight"][0] = float("nan")
    with pytest.raises(CheckpointError, match="ln1.weight holds NaN"):
        load_checkpoint(_save(tmp_path, ckpt))


def test_a_directory(tmp_path):
    """A folder is a model only with a config.json (tfchat export's); any other is said to be neither."""
    with pytest.raises(CheckpointError, match="a directory without config.json"):
        load_checkpoint(tmp_path)
