"""`--weights`: the checkpoint's own numbers, or 8-bit ones (`core.nn.int8_weights`), and how a result
made with the latter is labelled wherever it is shown. Torch-free: the app's UI process imports it."""
from __future__ import annotations

WEIGHT_CHOICES = ("exact", "int8")


def weights_label(weights: str) -> str:
    """The label of a result (status line, inspector, history, compare columns); "" for exact weights."""
    return "" if weights == "exact" else f"{weights} weights, not exact"
