"""A plain re-implementation of the book's model and generation loop, for tests.

Written from the chapter's math, independent of `core/`: one head at a time,
explicit mask, whole window recomputed, every position's logits. It is what
tfchat's engine must agree with.
"""
from __future__ import annotations

import math

import torch


def random_book_checkpoint(d_model, num_heads, num_blocks, context_length, vocab_size, seed=0, scale=0.5, dtype=torch.float32):
    """A checkpoint dict in the book's exact layout, with random weights."""
    g = torch.Generator().manual_seed(seed)
    D, H, C, V = d_model, num_heads, context_length, vocab_size
    hs = D // H

    def rnd(*shape, s=scale):
        return (torch.randn(*shape, generator=g) * s).to(dtype)

    sd = {"token_embedding_lookup_table.weight": rnd(V, D, s=1.0)}
    for i in range(num_blocks):
        p = f"transformer_blocks.{i}."
        sd[p + "ln1.weight"] = 1 + rnd(D, s=0.1)
        sd[p + "ln1.bias"] = rnd(D, s=0.1)
        sd[p + "ln2.weight"] = 1 + rnd(D, s=0.1)
        sd[p + "ln2.bias"] = rnd(D, s=0.1)
        for h in range(H):
            for w in ("Wq", "Wk", "Wv"):
                sd[f"{p}mha.heads.{h}.{w}.weight"] = rnd(hs, D, s=scale / math.sqrt(D) * 2)
            sd[f"{p}mha.heads.{h}.mask"] = torch.tril(torch.ones(C, C))
        sd[p + "mha.projection_layer.weight"] = rnd(D, D, s=1 / math.sqrt(D))
        sd[p + "mha.projection_layer.bias"] = rnd(D, s=0.02)
        sd[p + "ffn.ffn.0.weight"] = rnd(4 * D, D, s=1 / math.sqrt(D))
        sd[p + "ffn.ffn.0.bias"] = rnd(4 * D, s=0.02)
        sd[p + "ffn.ffn.2.weight"] = rnd(D, 4 * D, s=1 / math.sqrt(4 * D))
        sd[p + "ffn.ffn.2.bias"] = rnd(D, s=0.02)
    sd[f"transformer_blocks.{num_blocks}.weight"] = 1 + rnd(D, s=0.1)
    sd[f"transformer_blocks.{num_blocks}.bias"] = rnd(D, s=0.1)
    sd["model_out_linear_layer.weight"] = rnd(V, D, s=2 / math.sqrt(D))
    sd["model_out_linear_layer.bias"] = rnd(V, s=0.1)
    h_params = {
        "d_model": D, "num_heads": H, "num_blocks": num_blocks, "context_length": C,
        "max_token_value": V, "dropout": 0.1, "learning_rate": 1e-3, "device": "cpu",
        "batch_size": 4, "max_iters": 100, "eval_interval": 10, "eval_iters": 5, "TORCH_SEED": 1337,
    }
    return {"model_state_dict": sd, "h_params": h_params}


class ReferenceModel:
    def __init__(self, checkpoint):
        self.sd = {k: v.float() for k, v in checkpoint["model_state_dict"].items()}
        hp = checkpoint["h_params"]
        self.D, self.H = hp["d_model"], hp["num_heads"]
        self.L, self.C, self.V = hp["num_blocks"], hp["context_length"], hp["max_token_value"]

    def positions(self, T):
        pe = torch.zeros(self.C, self.D)
        pos = torch.arange(0, self.C, dtype=torch.float).unsqueeze(1)
        div = torch.exp(torch.arange(0, self.D, 2).float() * (-math.log(10000.0) / self.D))
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        return pe[:T]

    def _ln(self, x, prefix):
        return torch.nn.functional.layer_norm(x, (self.D,), self.sd[prefix + "weight"], self.sd[prefix + "bias"])

    def _lin(self, x, prefix, bias=True):
        y = x @ self.sd[prefix + "weight"].T
        return y + self.sd[prefix + "bias"] if bias else y

    def logits(self, ids, off=(), attention=None):
        """Logits [T, V] for every position of a window of ids (a list, len <= C).

        `off`: (layer, head) pairs whose output is zeroed before the projection; `attention`, a dict
        that receives {(layer, head): (scores before the mask, weights after mask and softmax)}."""
        T = len(ids)
        x = self.sd["token_embedding_lookup_table.weight"][torch.tensor(ids)] + self.positions(T)
        for i in range(self.L):
            p = f"transformer_blocks.{i}."
            h = self._ln(x, p + "ln1.")
            outs = []
            for head in range(self.H):
                hp = f"{p}mha.heads.{head}."
                q, k, v = (self._lin(h, hp + w + ".", bias=False) for w in ("Wq", "Wk", "Wv"))
                scores = (q @ k.T) / math.sqrt(k.shape[-1])
                w = torch.softmax(scores.masked_fill(self.sd[hp + "mask"][:T, :T] == 0, float("-inf")), dim=-1)
                if attention is not None:
                    attention[(i, head)] = (scores, w)
                outs.append(torch.zeros_like(q) if (i, head) in off else w @ v)
            x = x + self._lin(torch.cat(outs, dim=-1), p + "mha.projection_layer.")
            h = self._ln(x, p + "ln2.")
            x = x + self._lin(torch.relu(self._lin(h, p + "ffn.ffn.0.")), p + "ffn.ffn.2.")
        x = self._ln(x, f"transformer_blocks.{self.L}.")
        return self._lin(x, "model_out_linear_layer.")

    def next_logits(self, ids):
        """The book's step: crop to the last C tokens, take the last position."""
        return self.logits(ids[-self.C:])[-1]

    def greedy(self, prompt, n):
        """The book's loop at temperature -> 0: argmax each step. Returns (tokens, top-two gaps)."""
        ids, gaps = list(prompt), []
        for _ in range(n):
            logits = self.next_logits(ids)
            top2 = torch.topk(logits, 2).values
            gaps.append(float(top2[0] - top2[1]))
            ids.append(int(logits.argmax()))
        return ids[len(prompt):], gaps


# Fused matrices and the cache regroup float sums; a greedy token may differ only
# where the reference's two best logits are closer than this.
TIE_TOLERANCE = 1e-5


def assert_same_greedy_tokens(expected: list[int], got: list[int], gaps: list[float]) -> None:
    """`got` is the reference's greedy sequence, up to a legitimate tie-break (after which they diverge)."""
    assert len(got) == len(expected), f"{len(got)} tokens, expected {len(expected)}"
    for i, (e, g) in enumerate(zip(expected, got)):
        if e != g:
            assert gaps[i] < TIE_TOLERANCE, f"token {i} differs ({g} vs {e}) with a top-two gap of {gaps[i]}"
            break


def reference_probs(logits, temperature=1.0, top_k=None, top_p=1.0, min_p=0.0, penalty=1.0, window=()):
    """Written out plainly, in the documented order, over python floats."""
    logits = [float(x) for x in logits]
    for t in set(window):
        logits[t] = logits[t] / penalty if logits[t] > 0 else logits[t] * penalty
    logits = [x / temperature for x in logits]
    if top_k:
        kth = sorted(logits, reverse=True)[top_k - 1]
        logits = [x if x >= kth else float("-inf") for x in logits]
    m = max(logits)
    e = [0.0 if x == float("-inf") else torch.tensor(x - m).exp().item() for x in logits]
    s = sum(e)
    p = [x / s for x in e]
    if top_p < 1:
        order = sorted(range(len(p)), key=lambda i: -p[i])
        keep, mass = set(), 0.0
        for i in order:
            if mass >= top_p:
                break
            keep.add(i)
            mass += p[i]
        p = [x if i in keep else 0.0 for i, x in enumerate(p)]
    if min_p > 0:
        top = max(p)
        p = [x if x >= min_p * top else 0.0 for x in p]
    s = sum(p)
    return torch.tensor([x / s for x in p], dtype=torch.float64)
