"""The engine and the test's reference on the same random checkpoint, saved and loaded as a user's would be."""
import torch

from tfchat.core.nn.checkpoint import load_checkpoint
from tfchat.core.nn.fast_model import FastModel
from support.reference import ReferenceModel, random_book_checkpoint


def engine_and_reference(tmp_path, shape, seed, helper=None) -> tuple[FastModel, ReferenceModel]:
    """`shape`: (d_model, heads, blocks, context, vocab)."""
    checkpoint = random_book_checkpoint(*shape, seed=seed)
    path = tmp_path / "m.ckpt"
    torch.save(checkpoint, path)
    loaded = load_checkpoint(path)
    return FastModel(loaded.config, loaded.state_dict, torch.device("cpu"), helper), ReferenceModel(checkpoint)
