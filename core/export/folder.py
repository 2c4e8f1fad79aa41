"""`tfchat export`: a checkpoint as a Hugging Face folder that transformers (and vLLM) load.

The folder is written beside its destination under a temporary name and renamed into place when every
file is there, so an interrupted export leaves nothing half-written, and an existing folder is replaced
only when asked (`--force`), after the new one is complete.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from tfchat.core.errors import CheckpointError, ExportError
from tfchat.core.export.folder_readme import model_card
from tfchat.core.export.tokenizer_json import tokenizer_config, tokenizer_json
from tfchat.core.nn import hf_folder
from tfchat.core.nn.checkpoint import Checkpoint
from tfchat.core.nn.head_padding import padded_head_size
from tfchat.core.nn.model_card import json_value
from tfchat.core.nn.safetensors_file import write_safetensors
from tfchat.core.settings.sampling_params import SamplingParams
from tfchat.core.system.install_hint import install_command

REMOTE_FILES = ("configuration_book_gpt.py", "modeling_book_gpt.py")
AUTO_MAP = {
    "AutoConfig": "configuration_book_gpt.BookGPTConfig",
    "AutoModel": "modeling_book_gpt.BookGPTModel",
    "AutoModelForCausalLM": "modeling_book_gpt.BookGPTForCausalLM",
}


def check_packages() -> None:
    """The tokenizer is built with `tokenizers`, and the folder is for transformers: both are needed."""
    try:
        import tokenizers  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ExportError(f"tfchat export needs the export extra ({exc.name} is not installed): "
                          f"{install_command('export')}") from None


def generation_config(params: SamplingParams) -> dict:
    """A tfchat preset in transformers' words (its stop strings and window policy have no equivalent)."""
    greedy = params.temperature == 0
    config = {"do_sample": not greedy, "max_new_tokens": params.token_limit,
              "repetition_penalty": params.repetition_penalty}
    if not greedy:
        config.update({"temperature": params.temperature, "top_k": params.top_k or 0, "top_p": params.top_p,
                       "min_p": params.min_p or None})
    return {k: v for k, v in config.items() if v is not None}


def model_config(checkpoint: Checkpoint, dtype: str) -> dict:
    head_dim = padded_head_size(checkpoint.config.head_size)
    return {**hf_folder.hf_config(checkpoint.config, head_dim), "auto_map": AUTO_MAP, "torch_dtype": dtype,
            "dtype": dtype, "use_cache": True, "book_h_params": {str(k): json_value(v) for k, v in checkpoint.h_params.items()}}


def _stored_dtype(checkpoint: Checkpoint) -> str:
    """The output layer's dtype: the precision the file was saved in (a `.half()` model is float16 throughout)."""
    return str(checkpoint.state_dict["model_out_linear_layer.weight"].dtype).replace("torch.", "")


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _fill(folder: Path, checkpoint: Checkpoint, params: SamplingParams, training_text: str | None,
          encoding_name: str) -> None:
    dtype = _stored_dtype(checkpoint)
    weights = hf_folder.to_hf_state(checkpoint.state_dict, checkpoint.config,
                                    padded_head_size(checkpoint.config.head_size))
    write_safetensors(folder / hf_folder.WEIGHTS_FILE, weights, {"format": "pt", "written_by": "tfchat export"})
    _write_json(folder / hf_folder.CONFIG_FILE, model_config(checkpoint, dtype))
    _write_json(folder / "generation_config.json", generation_config(params))
    for name in REMOTE_FILES:
        (folder / name).write_text(resources.files("tfchat.core.export.remote").joinpath(name).read_text("utf-8"),
                                   encoding="utf-8")
    (folder / "tokenizer.json").write_text(tokenizer_json(encoding_name), encoding="utf-8")
    _write_json(folder / "tokenizer_config.json", tokenizer_config(checkpoint.config.context_length))
    (folder / "README.md").write_text(model_card(checkpoint, folder.name, dtype, training_text,
                                                 padded_head_size(checkpoint.config.head_size)), encoding="utf-8")


def _is_earlier_export(folder: Path) -> bool:
    try:
        return hf_folder.read_config_json(folder).get("model_type") == hf_folder.MODEL_TYPE
    except CheckpointError:
        return False


def export_folder(checkpoint: Checkpoint, out: Path, params: SamplingParams, encoding_name: str,
                  force: bool = False, training_text: str | None = None) -> list[Path]:
    """Write the folder at `out`; the files written, in order."""
    if checkpoint.config.family != "book":
        raise ExportError(f"{checkpoint.path}: a GPT-2 folder is in the Hugging Face format already; tfchat export "
                          "writes the book's model")
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise ExportError(f"{out}: exists and is not empty; give a new folder, or --force to replace an export")
        if not _is_earlier_export(out):
            raise ExportError(f"{out}: not a folder tfchat export wrote; --force replaces only those")
    if out.resolve() == checkpoint.path.resolve():
        raise ExportError(f"{out}: is the model being exported; give another folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        raise ExportError(f"{out}: cannot write there ({exc.strerror or exc})") from None
    try:
        _fill(staging, checkpoint, params, training_text, encoding_name)
        staging.chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except OSError as exc:
        raise ExportError(f"{out}: writing the folder failed ({exc.strerror or exc}); nothing was replaced") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return sorted(out.iterdir())
