"""The layering holds: the headless core never imports the UI, and each layer imports only downwards."""
import ast
import subprocess
import sys
from pathlib import Path

from support import ROOT  # noqa: E402

# tensors -> token ids -> text -> serving and tools; a module may import its own layer and those below.
LAYERS = {
    "errors": 0,
    "system": 1,      # device, threads, paths, process lifetime, the helper thread
    "settings": 2,    # sampling settings, presets, bounded YAML
    "nn": 3,          # the model: config, the book's and the fast one, checkpoints
    "decode": 4,      # token ids: sampling, single and batched decoding
    "engine": 5,      # text: tokenizer, streaming, stats, the backends
    "serve": 6,       # tfchat serve
    "store": 6,       # the history database: exchanges with their stats
    "train": 6,       # tfchat train
    "export": 6,      # tfchat export: a Hugging Face folder
    "corpus": 6,      # the training text's index: what of a text occurs in it
    "commands": 7,    # bench, compare, row printing
}


def core_modules() -> list[Path]:
    """Every module of core but its own __init__."""
    return sorted(p for p in (ROOT / "core").rglob("*.py") if p != ROOT / "core" / "__init__.py")


def dotted(path: Path) -> str:
    """core/engine/tokenizer.py -> tfchat.core.engine.tokenizer: the name it is imported by."""
    return ".".join(("tfchat", *path.relative_to(ROOT).with_suffix("").parts))


def layer_of(module: str) -> str | None:
    """`tfchat.core.engine.tokenizer` -> `engine`; `tfchat.core.errors` -> `errors`; None outside core."""
    parts = module.split(".")
    return parts[2] if parts[:2] == ["tfchat", "core"] and len(parts) > 2 else None


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module the file imports, at the top or inside a function, with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


def test_every_core_module_sits_in_a_known_layer():
    assert [dotted(p) for p in core_modules() if layer_of(dotted(p)) not in LAYERS] == []


def test_layers_import_only_downwards():
    upwards = []
    for path in core_modules():
        own = layer_of(dotted(path))
        for line, imported in imported_modules(path):
            target = layer_of(imported)
            if target in LAYERS and LAYERS[target] > LAYERS[own]:
                upwards.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
            if imported.split(".")[:2] in (["tfchat", "tui"], ["tui"]):
                upwards.append(f"{path.relative_to(ROOT)}:{line} imports the UI ({imported})")
    assert upwards == []


def test_the_layer_check_sees_an_upward_import(tmp_path):
    """The check above is only as good as its parser: an upward import it must catch."""
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from tfchat.core.engine.tokenizer import load_encoding\n")
    assert [(line, name) for line, name in imported_modules(module)] == [(2, "tfchat.core.engine.tokenizer")]
    assert LAYERS[layer_of("tfchat.core.engine.tokenizer")] > LAYERS["nn"]


def test_core_modules_do_not_import_textual():
    modules = [dotted(p) for p in core_modules()]
    code = (
        "import sys, importlib\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = [m for m in sys.modules if m == 'textual' or m.startswith('textual.') or m.startswith('tfchat.tui')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_app_process_never_loads_torch(small_model, tmp_path):
    """Its torch runs in the engine process: the app starts faster and holds ~190 MB less."""
    code = (
        "import sys\n"
        "from tfchat.tui.cli import build_parser, _check_app_can_start\n"
        "from tfchat.tui.app import make_app\n"
        f"args = build_parser().parse_args(['--model', {str(small_model)!r}, '--device', 'cpu'])\n"
        "_check_app_can_start(args)\n"
        f"make_app(args.model, args.device, None, {str(tmp_path / 'history.sqlite3')!r})\n"
        "print([m for m in sys.modules if m == 'torch' or m.startswith('torch.')][:3])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def test_a_client_of_a_server_and_a_mistake_never_load_torch(tmp_path):
    """`generate --endpoint`, a wrong model path, a bad setting: answered without importing torch (1.2 s here)."""
    code = (
        "import sys\n"
        "from tfchat.tui.cli import main\n"
        "codes = [main(['generate', '--endpoint', 'http://127.0.0.1:9/v1', 'Hi']),\n"
        f"         main(['generate', '--model', {str(tmp_path / 'missing.ckpt')!r}, 'Hi']),\n"
        "         main(['generate', '--temperature', 'nan', 'Hi'])]\n"
        "print(codes, [m for m in sys.modules if m == 'torch' or m.startswith('torch.')][:3])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.stdout.strip() == "[2, 2, 2] []", r.stdout + r.stderr


# A module someone can read in one sitting; the app itself only wires.
MAX_MODULE_LINES = 400
MAX_APP_LINES = 250


def test_no_module_of_core_or_tui_outgrows_one_reading():
    sizes = {path.relative_to(ROOT): len(path.read_text(encoding="utf-8").splitlines())
             for folder in ("core", "tui") for path in (ROOT / folder).rglob("*.py")}
    assert len(sizes) > 50  # the walk found the tree
    assert {str(p): n for p, n in sizes.items() if n > MAX_MODULE_LINES} == {}
    assert sizes[Path("tui/app.py")] <= MAX_APP_LINES


def test_the_app_is_built_without_mixins():
    """Each flow is a screen, a widget or a plain object the chat screen holds: no class shares
    state with the app by being mixed into it."""
    tree = ast.parse((ROOT / "tui" / "app.py").read_text(encoding="utf-8"))
    app_class = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "TfchatApp")
    assert [ast.unparse(base) for base in app_class.bases] == ["App"]
    chat = ast.parse((ROOT / "tui" / "chat" / "screen.py").read_text(encoding="utf-8"))
    chat_class = next(node for node in chat.body if isinstance(node, ast.ClassDef) and node.name == "ChatScreen")
    assert [ast.unparse(base) for base in chat_class.bases] == ["Screen"]
