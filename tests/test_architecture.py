"""The import direction of ARCHITECTURE.md, checked by walking every module's AST.

pybuild -> builder -> {runner, registry_client} -> layers. runner and registry_client never import
each other, nothing imports pybuild, and layers imports only the standard library and its codecs.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ("pybuild", "builder", "runner", "registry_client", "layers")
ALLOWED = {
    "pybuild": {"builder", "runner", "registry_client", "layers"},
    "builder": {"runner", "registry_client", "layers"},
    "runner": {"layers"},
    "registry_client": {"layers"},
    "layers": set(),
}
# third-party libraries each room may use (the CLI may use anything the rooms use, plus click)
THIRD_PARTY = {
    "layers": {"zstandard", "isal"},
    "registry_client": {"httpx", "httpcore", "cryptography"},  # httpcore: httpx's own transport layer
    "runner": {"pyroute2"},
    "builder": {"dockerfile_parse"},
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
