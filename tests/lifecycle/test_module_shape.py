"""The shape of the container lifecycle code: no import cycles inside the runner room (lazy imports
in functions count), a lean shim, and one writer of ``state.json``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "runner"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runner_imports(path: Path) -> set[str]:
    """Modules of the runner package that ``path`` imports, anywhere in the file."""
    mod = _module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "runner"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "runner":
                continue
            out.add(target)
            for a in node.names:                   # ``from . import state``: a module, not a name
                if (RUNNER.parent / (target.replace(".", "/") + "/" + a.name + ".py")).exists() or \
                        (RUNNER.parent / (target.replace(".", "/") + "/" + a.name)).is_dir():
                    out.add(f"{target}.{a.name}")
    return out - {mod}


def _graph(paths) -> dict[str, set[str]]:
    graph = {_module_name(p): _runner_imports(p) for p in paths}
    # a package's modules are reached through it: ``runner.network`` -> its __init__
    return {m: {d for d in deps if d in graph} for m, deps in graph.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [])
    return found


LIFECYCLE = ("containers", "records", "state", "livestate", "resources", "lifecycle", "stopping", "fromimage",
             "foreground", "listing", "details", "shim", "shim_client", "volumes", "exec", "logs", "restart", "errors")


def test_no_import_cycles_among_the_lifecycle_modules():
    graph = _graph(RUNNER.rglob("*.py"))
    lifecycle = {f"runner.{m}" for m in LIFECYCLE}
    cycles = [c for c in _cycles(graph) if set(c) & lifecycle]
    assert cycles == [], cycles
    # the pair the old shape had: containers <-> shim
    assert "runner.shim" not in graph["runner.containers"] or "runner.containers" not in graph["runner.shim"]
    assert not any(d in graph["runner.shim"] for d in ("runner.containers", "runner.lifecycle",
                                                          "runner.shim_client"))


def test_the_cycle_checker_sees_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_lifecycle_modules_stay_small():
    sizes = {m: len((RUNNER / f"{m}.py").read_text().splitlines()) for m in LIFECYCLE}
    assert {m: n for m, n in sizes.items() if n > 500} == {}


def test_shim_imports_stay_lean():
    """What the shim holds for as long as its container runs: the store, the resources it takes and
    the sandbox; nothing of the CLI side of the lifecycle, the image store, the network package or
    subprocess (it is loaded lazily where a container has ports or a network)."""
    code = ("import sys\n"
            "import runner.shim\n"
            "from runner import resources, sandbox\n"
            "from runner.syscalls import set_child_subreaper\n"
            "print(' '.join(sorted(sys.modules)))\n")
    mods = set(subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True,
                              cwd=str(ROOT), env={"PYTHONPATH": str(ROOT)}).stdout.split())
    forbidden = {"runner.containers", "runner.lifecycle", "runner.fromimage", "runner.listing",
                 "runner.stopping", "runner.shim_client", "runner.network", "runner.spec", "layers.store",
                 "subprocess", "pyroute2", "hashlib", "secrets", "shutil"}
    assert mods & forbidden == set()
    assert "runner.resources" in mods and "runner.state" in mods


def test_only_the_state_store_writes_state_json():
    """Every status change goes through ``ContainerStore.move``: nothing else writes ``state.json``
    (``_write_state`` is called from ``move`` only; ``create`` writes the first record in its
    temporary directory, in the same module). The one other writer is the resident shim loop's exit
    record (``runner/shimrecord.py``, no record types in memory), which ``test_shimloop.py`` holds
    byte-equal to ``move``'s."""
    offenders = []
    for path in list(RUNNER.rglob("*.py")) + list((ROOT / "pybuild").rglob("*.py")):
        text = path.read_text()
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("write_state", "_write_state"):
                if path.name != "state.py" or path.parent != RUNNER:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.Constant) and node.value == "state.json" and \
                    not (path.name in ("state.py", "shimrecord.py") and path.parent == RUNNER):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} names state.json")
    assert offenders == []
    tree = ast.parse((RUNNER / "state.py").read_text())
    callers = {f.name for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
               for n in ast.walk(f) if isinstance(n, ast.Attribute) and n.attr == "_write_state"}
    # status changes go through move (the state machine); a probe's result through record_health
    assert callers == {"move", "record_health"}


COMMANDS = ("cmd_run.py", "cmd_containers.py", "cmd_volume.py", "cmd_network.py")


def _calls(path: Path) -> list[str]:
    """Dotted names of everything ``path`` calls or raises (``os._exit``, ``SystemExit``, ``print``)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        target = node.func if isinstance(node, ast.Call) else node.exc if isinstance(node, ast.Raise) else None
        if isinstance(target, ast.Call):
            target = target.func
        parts = []
        while isinstance(target, ast.Attribute):
            parts.append(target.attr)
            target = target.value
        if isinstance(target, ast.Name):
            out.append(".".join([target.id] + parts[::-1]))
    return out


def test_commands_return_their_exit_code_and_never_exit():
    """``pybuild.cli.main`` is the one place that exits; a command returns its code."""
    for name in COMMANDS:
        calls = _calls(ROOT / "pybuild" / name)
        assert not [c for c in calls if c in ("SystemExit", "os._exit", "sys.exit", "exit_now", "exit")], name


def test_lifecycle_library_neither_prints_nor_exits():
    """The shim is a process of its own (its stderr is its log file); every other lifecycle module is
    library code."""
    for m in LIFECYCLE:
        if m == "shim":
            continue
        calls = _calls(RUNNER / f"{m}.py")
        assert not [c for c in calls if c in ("print", "SystemExit", "sys.exit", "exit")], m
