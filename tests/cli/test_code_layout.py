"""The app's floors hold, as core's layers do (tests/cli/test_import_hygiene.py): widgets know neither the chat
nor the app's state, the state is plain Python, only the chat's own modules take the chat screen, and
nothing in core/ or tui/ imports in a circle (TYPE_CHECKING and function-level imports included)."""
import ast

from support import ROOT
from support.import_graph import circles, import_graph, imports_of, module_files


def tui_modules(folder: str) -> dict[str, object]:
    prefix = f"tfchat.tui.{folder}"
    return {name: path for name, path in module_files().items() if name == prefix or name.startswith(prefix + ".")}


def imports_under(modules: dict, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for name, path in modules.items():
        for line, imported in imports_of(path):
            if any(imported == f or imported.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
    return found


def test_no_import_circles_in_core_or_tui():
    assert circles(import_graph()) == []


def test_the_circle_finder_sees_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert circles(graph) == [["a", "b", "c"]]


def test_the_import_reader_sees_type_checking_relative_and_function_imports(tmp_path, monkeypatch):
    import support.import_graph as graph

    monkeypatch.setattr(graph, "ROOT", tmp_path)
    module = tmp_path / "tui" / "state" / "x.py"
    module.parent.mkdir(parents=True)
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tfchat.tui.chat import screen\n"
                      "def f():\n    from ..widgets.heat import MASKED\n")
    assert [name for _, name in graph.imports_of(module)] == [
        "typing.TYPE_CHECKING", "tfchat.tui.chat.screen", "tfchat.tui.widgets.heat.MASKED"]


def test_widgets_import_neither_the_chat_nor_the_state():
    assert imports_under(tui_modules("widgets"), ("tfchat.tui.chat", "tfchat.tui.state", "tfchat.tui.transcript",
                                                  "tfchat.tui.screens", "tfchat.tui.app")) == []


def test_the_state_is_plain_python():
    """No Textual, no widget: tested without Pilot, safe from any thread."""
    assert imports_under(tui_modules("state"), ("textual", "rich", "tfchat.tui.chat", "tfchat.tui.widgets",
                                                "tfchat.tui.transcript", "tfchat.tui.screens", "tfchat.tui.app")) == []


def test_only_the_chat_imports_the_chat():
    outside = {name: path for name, path in module_files().items()
               if name.startswith("tfchat.tui.") and not name.startswith("tfchat.tui.chat")
               and name not in ("tfchat.tui.app", "tfchat.tui.bench_app")}  # the app builds the chat screen
    assert imports_under(outside, ("tfchat.tui.chat",)) == []


def chat_parameters(path) -> list[str]:
    """`file:line function(parameter)` for each parameter named `chat` or typed as the chat screen."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            args = node.args
            for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
                annotation = ast.unparse(arg.annotation) if arg.annotation is not None else ""
                if arg.arg == "chat" or "ChatScreen" in annotation:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {getattr(node, 'name', 'lambda')}({arg.arg})")
    return found


def test_only_the_chat_s_own_modules_take_the_chat_screen():
    # core/ has no chat screen (its `chat` is OpenAI's chat completions): the app's modules are checked.
    outside = [path for name, path in module_files().items()
               if name.startswith("tfchat.tui.") and not name.startswith("tfchat.tui.chat")]
    assert [found for path in outside for found in chat_parameters(path)] == []
    inside = [path for name, path in module_files().items() if name.startswith("tfchat.tui.chat")]
    assert any(chat_parameters(path) for path in inside)  # the check sees them where they belong


def test_no_two_modules_share_a_file_name():
    """One name per idea: `model_card.py` in two packages reads as one module."""
    names: dict[str, list[str]] = {}
    for name, path in module_files().items():
        if path.name != "__init__.py":
            names.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    assert {name: paths for name, paths in names.items() if len(paths) > 1} == {}
