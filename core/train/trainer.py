"""`tfchat train`: the book's training loop, writing the book's checkpoint format.

`--resume` continues any checkpoint tfchat opens. One without tfchat's side file
(the book's own train.py, or a bare state dict from its repository) starts a
fresh optimizer from its weights and is saved back in the form it came in, so
the reader's own scripts still load it.

Writes are atomic (temporary file, then rename), so Ctrl+C or a crash leaves
either the previous checkpoint or the new one, never half of one. The
optimizer's state lives in a side file (`<out>.optim`) so the checkpoint
itself stays exactly what the book's `inference.py` loads.
"""
from __future__ import annotations

import errno
import hashlib
import math
import os
import stat
import sys
import time
from pathlib import Path

import torch

from tfchat.core.engine.tokenizer import load_encoding, ordinary_vocabulary
from tfchat.core.errors import EXIT_INTERRUPTED, EXIT_OK, TrainingError, describe_exception
from tfchat.core.nn.book_model import BookModel
from tfchat.core.nn.checkpoint import ARCH_KEYS, TRAINING_TEXT_KEY, Checkpoint, load_checkpoint
from tfchat.core.nn.model_config import ModelConfig
from tfchat.core.system.device import resolve_device
from tfchat.core.system.files import not_a_file
from tfchat.core.train.config import KNOWN_KEYS, load_train_config



# The corpus is read whole and its tokens held as one tensor: about 6 bytes a character at the peak.
MAX_CORPUS_BYTES = 2 * 2**30


def read_training_text(path: Path) -> str:
    if not path.exists():
        raise TrainingError(f"{path}: no such file")
    if path.is_dir():
        raise TrainingError(f"{path}: is a directory, expected a UTF-8 text file")
    if not stat.S_ISREG(path.stat().st_mode):  # a FIFO would block the read forever
        raise TrainingError(f"{path}: {not_a_file(path)}, not a regular file; save the text to a file")
    if path.stat().st_size > MAX_CORPUS_BYTES:
        raise TrainingError(f"{path}: {path.stat().st_size / 2**30:.1f} GiB, over the {MAX_CORPUS_BYTES // 2**30} GiB "
                            "a corpus may have here (it is read whole, then tokenized in memory); train on a part")
    data = path.read_bytes()
    if not data.strip():
        raise TrainingError(f"{path}: the file is empty")
    if b"\x00" in data[:65536]:
        raise TrainingError(f"{path}: looks binary (NUL bytes); expected UTF-8 text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TrainingError(f"{path}: not UTF-8 text (invalid byte at offset {exc.start})") from None


def tokenize(text: str, path: Path, context_length: int) -> torch.Tensor:
    tokens = load_encoding().encode(text, disallowed_special=())
    # The validation split is the last 10%; it must hold one window plus its target.
    needed = 10 * (context_length + 1) + 1
    if len(tokens) < needed:
        raise TrainingError(
            f"{path}: {len(tokens)} tokens is too short for context_length {context_length} "
            f"(needs at least {needed} so the 10% validation split holds a window)"
        )
    return torch.tensor(tokens, dtype=torch.long)


def get_batch(data: torch.Tensor, batch_size: int, context_length: int, device, generator) -> tuple:
    starts = torch.randint(len(data) - context_length, (batch_size,), generator=generator)
    x = torch.stack([data[s : s + context_length] for s in starts])
    y = torch.stack([data[s + 1 : s + context_length + 1] for s in starts])
    return x.to(device), y.to(device)


@torch.no_grad()
def estimate_loss(model, splits: dict, hp: dict, device, generator) -> dict:
    model.eval()
    out = {}
    for name, data in splits.items():
        losses = [model(*get_batch(data, hp["batch_size"], hp["context_length"], device, generator))[1].item()
                  for _ in range(hp["eval_iters"])]
        out[name] = sum(losses) / len(losses)
    model.train()
    return out


def save_together(items: list[tuple[object, Path]]) -> None:
    """Write every (object, path) or none: each to a temporary file first, renamed into place only once
    all are written, so a checkpoint and its optimizer state always come from the same step. A write
    that fails (a full disk) removes every temporary file and leaves the previous files as they were."""
    written = []
    try:
        for obj, path in items:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            written.append(tmp)
            torch.save(obj, tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
    except (OSError, RuntimeError) as exc:
        for tmp in written:
            tmp.unlink(missing_ok=True)
        raise TrainingError(f"cannot save {items[len(written) - 1][1]}: {_write_failure(exc)}; the files from the "
                            "last save are kept") from None
    for (_, path), tmp in zip(items, written):
        os.replace(tmp, path)


def _write_failure(exc: BaseException) -> str:
    # torch's zip writer reports a full disk as a failed "enforce" about the file position.
    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "unexpected pos" in str(exc) \
            or "failed writing" in str(exc):
        return "the disk is full"
    return describe_exception(exc)


def book_checkpoint(model: BookModel, hp: dict, half: bool, form_of: Checkpoint | None = None,
                    training_text: dict | None = None) -> dict:
    """What `out` holds: the chapter's format (with the training text's path and hash beside it), or, for a
    bare checkpoint resumed, a bare state dict keyed as that file was (`form_of`)."""
    state = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() for k, v in state.items()}
    if form_of is not None and form_of.bare:
        return form_of.stored_state_dict(state)
    saved = {"model_state_dict": state, "h_params": dict(hp)}
    if training_text is not None:
        saved[TRAINING_TEXT_KEY] = training_text
    return saved


def _fresh_resume_h_params(checkpoint: Checkpoint, config_path: Path | None, overrides: dict) -> dict:
    """Training settings for a checkpoint with no optimizer state: the architecture its file gives,
    what it stored of training (the chapter's h_params), then the config file and flags."""
    stored = {k: v for k, v in checkpoint.h_params.items() if k in KNOWN_KEYS and k not in ARCH_KEYS}
    flags = {k: v for k, v in overrides.items() if v is not None}
    arch = {k: v for k, v in checkpoint.h_params.items() if k in ARCH_KEYS}
    hp = load_train_config(config_path, {**stored, **flags})
    return {**hp, **arch}


def _refuse_other_architecture(checkpoint: Checkpoint, overrides: dict) -> None:
    """A resumed model keeps its shape: a flag asking for another one is an error, not ignored."""
    arch = {k: v for k, v in checkpoint.h_params.items() if k in ARCH_KEYS}
    clashes = [k for k, v in overrides.items() if v is not None and k in arch and v != arch[k]]
    if clashes:
        key = clashes[0]
        raise TrainingError(f"--resume: {checkpoint.path} has {key} {arch[key]}, not {overrides[key]}; "
                            "a resumed model keeps its architecture")


class Progress:
    """One self-rewriting line on a terminal; a line per evaluation elsewhere."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.stream = total, stream
        self.tty = stream.isatty()

    def show(self, step: int, train_loss: float, val_loss: float | None, tok_s: float, eta_s: float, final=False):
        width = 24
        filled = int(width * step / self.total)
        bar = "#" * filled + "-" * (width - filled)
        val = f"{val_loss:.4f}" if val_loss is not None else "  -   "
        line = (f"[{bar}] step {step}/{self.total}  train {train_loss:.4f}  val {val}  "
                f"{tok_s:,.0f} tok/s  left {int(eta_s) // 60}m{int(eta_s) % 60:02d}s")
        if self.tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
        elif final or val_loss is not None:
            self.stream.write(line + "\n")
        self.stream.flush()


def _read_side_file(path: Path) -> dict:
    try:
        side = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any damage to the file is the same one line
        raise TrainingError(f"{path}: cannot read the optimizer state ({describe_exception(exc)})") from None
    if not isinstance(side, dict) or not {"step", "optimizer", "model_state_dict"} <= set(side):
        raise TrainingError(f"{path}: not an optimizer state written by tfchat train")
    return side


def train(text_path: Path, out: Path, config_path: Path | None, overrides: dict, resume: bool,
          device_name: str, half: bool, keep_best: bool = False, log=sys.stderr, force: bool = False,
          full_vocabulary: bool = False) -> dict:
    """Train and write `out`; returns the steps done and the last train and val losses.

    An existing `out` is continued (`resume`) or replaced (`force`), never overwritten silently.
    The vocabulary is the book's (up to the largest token id in the text), or with `full_vocabulary`
    every ordinary id of cl100k_base, so any prompt encodes.
    """
    if resume and full_vocabulary:
        raise TrainingError("--full-vocabulary: a resumed model keeps its vocabulary; train a new one (--force, "
                            "or another --out) to widen it")
    device = resolve_device(device_name)
    optim_path = out.with_name(out.name + ".optim")
    start_step, optim_state, checkpoint, side = 0, None, None, {}
    if not resume and not force and out.exists():
        raise TrainingError(f"{out} already exists; --resume continues its training, --force replaces it "
                            "(or choose another --out)")
    if resume:
        if not out.exists():
            raise TrainingError(f"--resume: needs {out} from an earlier run")
        checkpoint = load_checkpoint(out)
        if checkpoint.config.family != "book":
            raise TrainingError(f"{out}: a GPT-2 folder; tfchat train trains the book's model (a GPT-2 is fine-tuned "
                                "with transformers, as the book's GPT2/finetune-gpt2.py does)")
        _refuse_other_architecture(checkpoint, overrides)
        if optim_path.exists():
            side = _read_side_file(optim_path)
            stored = side.get("h_params") or checkpoint.h_params  # a bare file keeps its settings in the side file
            hp = {**stored, **{k: v for k, v in overrides.items() if v is not None and k == "max_iters"}}
            start_step, optim_state = side["step"], side["optimizer"]
            if hp["max_iters"] <= start_step:
                raise TrainingError(f"--resume: {out} is already at step {start_step}; "
                                    f"give --max-iters above {start_step} to train further")
            resume_weights = side["model_state_dict"]
            half = half or side.get("half", False)
        else:
            hp = _fresh_resume_h_params(checkpoint, config_path, overrides)
            resume_weights = checkpoint.state_dict
            half = half or checkpoint.state_dict["model_out_linear_layer.weight"].dtype == torch.float16
            print(f"{out}: {checkpoint.form} with no optimizer state ({optim_path.name} not found); "
                  f"training continues from its weights with a fresh AdamW optimizer, steps 0..{hp['max_iters']}",
                  file=log)
    else:
        hp = load_train_config(config_path, overrides)

    text = read_training_text(text_path)
    trained_on = {"path": str(text_path.resolve()), "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}
    data = tokenize(text, text_path, hp["context_length"])
    vocab = int(data.max()) + 1
    if resume and vocab > hp["max_token_value"]:
        raise TrainingError(f"{text_path}: has tokens beyond the checkpoint's vocabulary; resume on the same text")
    if not resume:  # a resumed run keeps the checkpoint's vocabulary
        hp["max_token_value"] = ordinary_vocabulary(load_encoding()) if full_vocabulary else vocab
    hp["device"] = device.type
    split = int(0.9 * len(data))
    splits = {"train": data[:split], "val": data[split:]}

    torch.manual_seed(hp["TORCH_SEED"] + start_step)
    batches = torch.Generator().manual_seed(hp["TORCH_SEED"] + start_step)
    config = checkpoint.config if checkpoint is not None else ModelConfig(
        hp["d_model"], hp["num_heads"], hp["num_blocks"], hp["context_length"], hp["max_token_value"])
    model = BookModel(config, dropout=hp["dropout"]).to(device)
    if resume:
        model.load_state_dict({k: v.float() for k, v in resume_weights.items()})
    optimizer = torch.optim.AdamW(model.parameters(), lr=hp["learning_rate"])
    if optim_state is not None:
        optimizer.load_state_dict(optim_state)
    params = sum(p.numel() for p in model.parameters())
    print(f"training {params:,} parameters on {len(data):,} tokens ({vocabulary_said(config, vocab)}) on {device}, "
          f"steps {start_step}..{hp['max_iters']}", file=log)

    progress = Progress(hp["max_iters"], log)
    step, losses, started = start_step, {"train": math.nan, "val": math.nan}, time.perf_counter()
    tokens_per_step = hp["batch_size"] * hp["context_length"]

    best = {"val": side.get("best_val", math.inf) if resume else math.inf}

    def save():
        improved = not keep_best or losses["val"] < best["val"]
        best_val = min(best["val"], losses["val"]) if improved else best["val"]
        # The latest full-precision state, whatever `out` holds, so --resume picks up exactly here.
        side_file = {"optimizer": optimizer.state_dict(), "step": step, "train_loss": losses["train"],
                     "val_loss": losses["val"], "best_val": best_val, "half": half, "h_params": dict(hp),
                     "model_state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
        items = [(book_checkpoint(model, hp, half, checkpoint, trained_on), out)] if improved else []
        save_together(items + [(side_file, optim_path)])
        best["val"] = best_val

    model.train()
    try:
        while step < hp["max_iters"]:
            _, loss = model(*get_batch(splits["train"], hp["batch_size"], hp["context_length"], device, batches))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            elapsed = time.perf_counter() - started
            rate = (step - start_step) * tokens_per_step / elapsed
            eta = (hp["max_iters"] - step) * elapsed / (step - start_step)
            evaluate = step % hp["eval_interval"] == 0 or step == hp["max_iters"]
            if evaluate:
                losses = estimate_loss(model, splits, hp, device, batches)
                save()
            progress.show(step, losses["train"] if evaluate else loss.item(),
                          losses["val"] if evaluate else None, rate, eta, final=step == hp["max_iters"])
    except KeyboardInterrupt:
        save()
        raise
    if step == start_step:
        save()
    return {"steps": step, **losses, "best_val": best["val"]}


def vocabulary_said(config: ModelConfig, seen: int) -> str:
    """The vocabulary trained, and what a vocabulary wider than the text's costs: the embedding's and the
    output layer's rows for the ids the text never uses."""
    if config.vocab_size <= seen:
        return f"vocabulary {config.vocab_size:,}, up to the text's largest token id"
    extra = (config.vocab_size - seen) * (2 * config.d_model + 1)
    return (f"vocabulary {config.vocab_size:,}, the tokenizer's whole; the text's own would be {seen:,}: "
            f"{extra:,} more parameters")


def run_train_command(args) -> int:
    overrides = {k: getattr(args, k, None) for k in KNOWN_KEYS}
    out = Path(args.out)
    try:
        result = train(Path(args.textfile), out, args.config, overrides, args.resume, args.device, args.half,
                       args.keep_best, force=args.force, full_vocabulary=args.full_vocabulary)
    except KeyboardInterrupt:
        print(f"\ntfchat: interrupted; progress saved to {out} (continue with --resume)", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"saved {out} ({out.stat().st_size / 2**20:.1f} MiB): step {result['steps']}, "
          f"train loss {result['train']:.4f}, val loss {result['val']:.4f}"
          + (f", best val loss kept {result['best_val']:.4f}" if args.keep_best else ""), file=sys.stderr)
    return EXIT_OK
