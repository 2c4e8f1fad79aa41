"""The project's import graph, read from the source (no module is imported): every import, at the top,
inside a function or under TYPE_CHECKING, as an edge from one module of the checkout to another."""
from __future__ import annotations

import ast
from pathlib import Path

from support import ROOT

PACKAGES = ("core", "tui")  # installed as tfchat.core and tfchat.tui


def module_files() -> dict[str, Path]:
    """`tfchat.core.engine.tokenizer` -> core/engine/tokenizer.py, for every module of core/ and tui/."""
    found = {}
    for folder in PACKAGES:
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(("tfchat", *parts))] = path
    return found


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in the file; `from a import b` gives `a.b` (a module or a name in a)."""
    found = []
    package = ".".join(("tfchat", *path.relative_to(ROOT).parent.parts))
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the file's own package upwards
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of the checkout it imports."""
    modules = module_files()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for _line, imported in imports_of(path):
            # `from a.b import c`: the module a.b.c if there is one, else a.b (c is a name in it)
            target = imported if imported in modules else imported.rpartition(".")[0]
            if target in modules and target != name:
                graph[name].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)
