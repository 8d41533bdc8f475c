"""The import direction of ARCHITECTURE.md, checked by walking every module's AST.

pybuild -> compose -> builder -> {runner, registry_client} -> layers (nothing but pybuild imports compose). runner and registry_client never import
each other, nothing imports pybuild, and layers imports only the standard library and its codecs.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ("pybuild", "compose", "builder", "runner", "registry_client", "layers")
ALLOWED = {
    "pybuild": {"compose", "builder", "runner", "registry_client", "layers"},
    "compose": {"builder", "runner", "registry_client", "layers"},
    "builder": {"runner", "registry_client", "layers"},
    "runner": {"layers"},
    "registry_client": {"layers"},
    "layers": set(),
}
# third-party libraries each room may use (the CLI may use anything the rooms use, plus click)
THIRD_PARTY = {
    "layers": {"zstandard", "isal"},
    "registry_client": {"httpx", "httpcore", "cryptography", "nacl", "yaml"},  # httpcore: httpx's own transport layer; nacl: cosign keys; yaml: registries.d
    "runner": {"pyroute2"},
    "builder": {"dockerfile_parse"},
    "compose": {"yaml"},
    "pybuild": {"click"},
}


def _imports(path: Path, package: str) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level > 0:
                found.add(package)
    return found


def _room_modules(room: str):
    yield from sorted((ROOT / room).rglob("*.py"))


def test_rooms_import_in_one_direction():
    bad = []
    for room in ROOMS:
        for path in _room_modules(room):
            for top in _imports(path, room):
                if top in ROOMS and top != room and top not in ALLOWED[room]:
                    bad.append(f"{path.relative_to(ROOT)} imports {top}")
    assert not bad, "imports against the architecture:\n" + "\n".join(bad)


def test_third_party_libraries_stay_in_their_room():
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    bad = []
    for room in ROOMS:
        allowed = set(THIRD_PARTY[room])
        for lower in ALLOWED[room]:
            allowed |= THIRD_PARTY[lower]
        if room == "pybuild":
            allowed |= {lib for libs in THIRD_PARTY.values() for lib in libs}
        for path in _room_modules(room):
            for top in _imports(path, room):
                if top in ROOMS or top in stdlib or top in allowed:
                    continue
                bad.append(f"{path.relative_to(ROOT)} imports third-party {top}")
    assert not bad, "\n".join(bad)


def test_checker_sees_a_violation(tmp_path):
    """The walker itself must catch a bad import, or the tests above prove nothing."""
    bad = tmp_path / "m.py"
    bad.write_text("import builder\nfrom registry_client import x\n")
    assert _imports(bad, "runner") >= {"builder", "registry_client"}


# --- pybuild uses only the public names of the rooms beneath --------------------------------------

BENEATH = ("builder", "runner", "registry_client", "layers")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_uses(path: Path) -> list[str]:
    """``file:line what`` for each private name of a room beneath that ``path`` reaches: a private
    module (``layers.store._gc``), ``from room.x import _y``, or ``x._y`` on a name bound by an import
    from a room (``from runner import containers`` then ``containers._helper``)."""
    tree = ast.parse(path.read_text(), str(path))
    bound: set[str] = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in BENEATH:
                    if any(_private(part) for part in alias.name.split(".")):
                        found.append(f"{node.lineno} import {alias.name}")
                    bound.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] not in BENEATH:
                continue
            if any(_private(part) for part in node.module.split(".")):
                found.append(f"{node.lineno} from {node.module} import ...")
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"{node.lineno} from {node.module} import {alias.name}")
                bound.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in bound:
                found.append(f"{node.lineno} {ast.unparse(node)}")
    return sorted(set(found), key=lambda s: (int(s.split()[0]), s))


def test_pybuild_imports_nothing_private_from_the_rooms():
    bad = [f"{path.relative_to(ROOT)}:{use}" for path in _room_modules("pybuild") for use in _private_uses(path)]
    assert not bad, f"pybuild/ reaches {len(bad)} private names of the rooms beneath:\n" + "\n".join(bad)


# --- no import cycle inside a package --------------------------------------------------------------

def _module_name(base: Path, path: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _runtime_imports(tree: ast.AST):
    """Every import statement that can run (in functions too), not those under ``if TYPE_CHECKING``."""
    for child in ast.iter_child_nodes(tree):
        if _type_checking_only(child):
            yield from (n for stmt in child.orelse for n in _runtime_imports_in(stmt))
            continue
        yield from _runtime_imports_in(child)


def _runtime_imports_in(node: ast.AST):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    else:
        yield from _runtime_imports(node)


def _package_graph(base: Path, room: str) -> dict[str, set[str]]:
    """module -> modules of the same room it imports (``base/room/**.py``; a package is its ``__init__``)."""
    paths = sorted((base / room).rglob("*.py"))
    modules = {_module_name(base, p): p for p in paths}
    graph: dict[str, set[str]] = {name: set() for name in modules}

    def target(dotted: str, name: str | None) -> str | None:
        if name and f"{dotted}.{name}" in modules:
            return f"{dotted}.{name}"
        return dotted if dotted in modules else None

    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _runtime_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                hits = [target(alias.name, None) for alias in node.names]
            else:
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                    dotted = ".".join(anchor + ([node.module] if node.module else []))
                else:
                    dotted = node.module or ""
                hits = [target(dotted, alias.name) for alias in node.names]
            graph[name].update(h for h in hits if h and h != name and h.split(".")[0] == room)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``a -> b -> a``) for each strongly connected set of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    cycles = []
    for group in groups:
        start = min(group)
        paths = {start: [start]}
        todo = [start]
        while todo:  # breadth first inside the group: the shortest way back to start
            v = todo.pop(0)
            for w in sorted(graph[v] & group):
                if w == start:
                    cycles.append(paths[v] + [start])
                    todo = []
                    break
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    todo.append(w)
    return sorted(cycles)


def test_no_import_cycle_inside_a_package():
    found = [" -> ".join(cycle) for room in ROOMS for cycle in _cycles(_package_graph(ROOT, room))]
    assert not found, "import cycles (a module of a cycle cannot be understood or loaded alone):\n" + "\n".join(found)


# --- small modules ----------------------------------------------------------------------------------

MAX_LINES = 500


def _long_modules(paths, limit: int = MAX_LINES) -> list[str]:
    counts = ((path, len(path.read_text().splitlines())) for path in paths)
    return [f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {n} lines"
            for path, n in counts if n > limit]


def test_no_module_over_500_lines():
    bad = [line for room in ROOMS for line in _long_modules(_room_modules(room))]
    assert not bad, f"modules over {MAX_LINES} lines (split them by job):\n" + "\n".join(bad)


# --- the checks above can fail -------------------------------------------------------------------------

def test_private_check_sees_private_imports_and_attributes(tmp_path):
    mod = tmp_path / "cmd_x.py"
    mod.write_text(
        "from runner import containers, _hidden\n"
        "from layers.store import Store as S\n"
        "import builder.plan\n"
        "from layers.store._gc import sweep\n"
        "from layers.digest import Digest\n"
        "import os\n"
        "def f():\n"
        "    containers._supervise()\n"
        "    S._open(1).fine\n"
        "    builder.plan._table\n"
        "    os._exit(0)\n"            # not a room: allowed
        "    containers.run().__class__\n"   # dunder: allowed
        "    Digest.parse('x')\n")
    uses = _private_uses(mod)
    assert [u.split(" ", 1)[1] for u in uses] == [
        "from runner import _hidden", "from layers.store._gc import ...", "containers._supervise",
        "S._open", "builder.plan._table"], uses


def test_cycle_check_names_a_cycle_through_functions_and_relative_imports(tmp_path):
    pkg = tmp_path / "runner"
    (pkg / "net").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "net" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .net.c import g\n")
    (pkg / "net" / "c.py").write_text("from runner.a import x\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import x\n")
    (pkg / "e.py").write_text("from .d import y\nfrom .a import z\n")  # into the cycle, not part of it
    graph = _package_graph(tmp_path, "runner")
    assert graph["runner.d"] == set() and graph["runner.e"] == {"runner.d", "runner.a"}
    assert _cycles(graph) == [["runner.a", "runner.b", "runner.net.c", "runner.a"]]
    assert _cycles({"x": {"y"}, "y": set()}) == []


def test_size_check_counts_lines(tmp_path):
    long, short = tmp_path / "long.py", tmp_path / "short.py"
    long.write_text("x = 1\n" * 501)
    short.write_text("x = 1\n" * 500)
    assert _long_modules([long, short]) == [f"{long}: 501 lines"]
