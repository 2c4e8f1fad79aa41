"""`tfchat export`: the model as a Hugging Face folder (`core.export.folder`), and what was written."""
from __future__ import annotations


from tfchat.core.commands.generate import load_catalog
from tfchat.core.engine.tokenizer import load_encoding
from tfchat.core.export.folder import check_packages, export_folder
from tfchat.core.nn.checkpoint import load_checkpoint
from tfchat.core.system.paths import resolve_model_path, user_path


def run_export(args) -> int:
    check_packages()  # before the model loads: a missing extra is said at once
    checkpoint = load_checkpoint(resolve_model_path(args.model))
    params = load_catalog().get(args.preset).params
    out = user_path(args.outdir)
    files = export_folder(checkpoint, out, params, load_encoding().name, force=args.force,
                          training_text=args.training_text)
    total = sum(f.stat().st_size for f in files)
    print(f"exported {checkpoint.path} ({checkpoint.parameter_count:,} parameters) to {out}/: "
          f"{len(files)} files, {total / 2**20:.1f} MiB")
    for f in files:
        print(f"  {f.name}")
    print(f"load it: AutoModelForCausalLM.from_pretrained({str(out)!r}, trust_remote_code=True); "
          f"or tfchat --model {out}")
    return 0
