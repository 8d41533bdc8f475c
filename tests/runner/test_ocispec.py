"""runner.ocispec: the typed runtime spec. What make_spec writes is valid against runtime-spec's JSON
schema for every option set, parsing what we write gives back the same value, and a malformed
``config.json`` is refused with the path of the field at fault."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from runner.errors import InvalidRunOption
from runner.ocispec import InvalidSpec, Linux, Mount, Namespace, Process, Root, Spec
from runner.options import BindMount, RunOptions, TmpfsMount, parse_bytes
from runner.spec import clamp_rlimits, make_spec

from .test_spec import GOLDEN, IMAGE, validate

OPTION_SETS = {
    "default": RunOptions(),
    "privileged": RunOptions(privileged=True),
    "read-only": RunOptions(read_only=True),
    "volume": RunOptions(mounts=(BindMount("/srv/data", "/data"), BindMount("/etc/ssl", "/ssl", readonly=True))),
    "tmpfs": RunOptions(tmpfs=(TmpfsMount("/run"), TmpfsMount("/scratch", "size=64m,mode=1777"))),
    "limits": RunOptions(memory=parse_bytes("256m"), cpus=1.5, pids_limit=50),
    "unlimited-pids": RunOptions(pids_limit=-1),
    "user": RunOptions(user="alice:staff"),
    "numeric-user": RunOptions(user="4242:4343"),
    "caps": RunOptions(cap_add=("SYS_ADMIN", "net_admin"), cap_drop=("ALL",)),
    "network-none": RunOptions(network="none"),
    "network-host": RunOptions(network="host"),
    "network-host-named": RunOptions(network="host", hostname="h"),
    "joined-netns": RunOptions(netns_path="/run/netns/x"),
    "tty-env-workdir": RunOptions(tty=True, env=("A=1", "B"), workdir="/w", labels=(("l", "v"),)),
    "entrypoint": RunOptions(entrypoint=("/bin/sh", "-c"), command=("echo hi",)),
}


@pytest.fixture
def etc(tmp_path: Path) -> str:
    d = tmp_path / "etc"
    d.mkdir()
    (d / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www:/var/www:/bin/false\n"
                              "alice:x:1000:1000::/home/alice:/bin/sh\n")
    (d / "group").write_text("root:x:0:\nwww-data:x:33:\nalice:x:1000:\nstaff:x:50:alice,bob\n")
    return str(d)


@pytest.mark.parametrize("name", sorted(OPTION_SETS))
def test_make_spec_is_schema_valid_and_round_trips(name: str, etc: str) -> None:
    spec = make_spec(IMAGE, OPTION_SETS[name], rootfs="/r", etc_dir=etc, container_id="0123456789abcdef",
                     volume_dir="/c/volumes")
    doc = spec.to_dict()
    validate(doc)
    assert Spec.from_dict(doc) == spec
    assert Spec.from_json(spec.to_json()) == spec
    assert json.loads(spec.to_json()) == doc                  # to_json is to_dict's JSON, nothing else
    hash(spec)                                                # a value: usable as a key
    clamped = clamp_rlimits(spec, {"RLIMIT_NOFILE": 1024})
    validate(clamped)
    assert Spec.from_dict(clamped.to_dict()) == clamped


def test_option_sets_reach_the_spec(etc: str) -> None:
    """The option sets above are not all the default spec in disguise."""
    specs = {name: make_spec(IMAGE, opts, rootfs="/r", etc_dir=etc) for name, opts in OPTION_SETS.items()}
    # --network none and the default bridge both ask for a new network namespace (the bridge's veth
    # is the lifecycle's business): the only pair allowed to be equal
    assert specs["network-none"] == specs["default"]
    assert len(set(specs.values())) == len(specs) - 1
    assert specs["privileged"].linux.seccomp is None and specs["default"].linux.seccomp is not None
    assert specs["read-only"].root.readonly and not specs["default"].root.readonly
    assert specs["limits"].linux.resources.memory.limit == 256 << 20
    assert specs["unlimited-pids"].linux.resources.pids is None
    assert specs["caps"].process.capabilities.bounding == ("CAP_NET_ADMIN", "CAP_SYS_ADMIN")
    assert specs["network-none"].linux.has_namespace("network")
    assert not specs["network-host"].linux.has_namespace("network")
    assert Mount("/scratch", "tmpfs", "tmpfs", ("nosuid", "nodev", "noexec", "size=64m", "mode=1777")) \
        in specs["tmpfs"].mounts


def test_the_schema_check_can_fail(etc: str) -> None:
    """A test of the test: the schema refuses what runtime-spec forbids, so passing above means something."""
    doc = make_spec(IMAGE, RunOptions(), rootfs="/r", etc_dir=etc).to_dict()
    for path, bad in ((("process", "user", "uid"), -1), (("linux", "namespaces"), [{"type": "nope"}]),
                      (("process", "rlimits"), [{"type": "NOFILE", "hard": 1, "soft": 1}])):
        broken = copy.deepcopy(doc)
        target = broken
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = bad
        with pytest.raises(jsonschema.ValidationError):
            validate(broken)


def test_golden_and_foreign_documents_round_trip() -> None:
    for name in ("image-defaults", "all-options", "foreign-runc-spec"):
        doc = json.loads((GOLDEN / f"{name}.json").read_text())
        spec = Spec.from_dict(doc)
        assert spec.to_dict() == doc, name
    runc = Spec.from_dict(json.loads((GOLDEN / "foreign-runc-spec.json").read_text()))
    assert runc.hostname == "runc" and runc.process.capabilities.ambient == ("CAP_AUDIT_WRITE", "CAP_KILL",
                                                                             "CAP_NET_BIND_SERVICE")
    assert Mount("/proc", "proc", "proc") in runc.mounts


def _default_doc() -> dict:
    return make_spec({"config": {"Cmd": ["sh"]}}, RunOptions(memory=parse_bytes("64m")), rootfs="/r").to_dict()


def _set(doc: dict, path: tuple, value) -> None:
    for key in path[:-1]:
        doc = doc[key]
    if value is KeyError:
        del doc[path[-1]]
    else:
        doc[path[-1]] = value


@pytest.mark.parametrize("path,value,field,problem", [
    (("process", "user", "uid"), "0", "process.user.uid", "must be an integer, not a string"),
    (("process", "user", "uid"), True, "process.user.uid", "must be an integer, not a boolean"),
    (("process", "user", "gid"), -1, "process.user.gid", "out of range"),
    (("process", "args"), [], "process.args", "must not be empty"),
    (("process", "args"), "sh", "process.args", "must be an array, not a string"),
    (("process", "env", 1), 7, "process.env[1]", "must be a string"),
    (("process", "cwd"), "rel", "process.cwd", "not an absolute path"),
    (("process", "cwd"), KeyError, "process.cwd", "required field is missing"),
    (("process", "terminal"), "yes", "process.terminal", "must be a boolean"),
    (("process", "rlimits", 0, "type"), "NOFILE", "process.rlimits[0].type", "not an RLIMIT_* name"),
    (("process", "capabilities", "bounding", 0), None, "process.capabilities.bounding[0]", "must be a string"),
    (("process", "apparmorProfile"), "x", "process.apparmorProfile", "unknown field"),
    (("root",), KeyError, "root", "required field is missing"),
    (("root", "path"), 3, "root.path", "must be a string"),
    (("mounts", 3, "destination"), "dev", "mounts[3].destination", "not an absolute path"),
    (("mounts", 0, "options"), "ro", "mounts[0].options", "must be an array"),
    (("linux", "namespaces", 2, "type"), "time-travel", "linux.namespaces[2].type", "unknown namespace type"),
    (("linux", "resources", "memory", "limit"), 1.5, "linux.resources.memory.limit", "must be an integer, not a number"),
    (("linux", "resources", "devices", 4, "access"), "rwx", "linux.resources.devices[4].access", "r, w and m"),
    (("linux", "seccomp", "syscalls", 2, "args", 0, "op"), 4, "linux.seccomp.syscalls[2].args[0].op",
     "must be a string"),
    (("linux", "seccomp", "defaultAction"), KeyError, "linux.seccomp.defaultAction", "required field is missing"),
    (("linux", "uidMappings"), [], "linux.uidMappings", "unknown field"),
    (("linux", "sysctl"), {"net.ipv4.ip_forward": 1}, "linux.sysctl['net.ipv4.ip_forward']", "must be a string"),
    (("annotations",), {"a": 1}, "annotations['a']", "must be a string"),
    (("hooks",), {}, "hooks", "unknown field"),
    (("ociVersion",), "2.0.0", "ociVersion", "only runtime-spec 1.x"),
])
def test_malformed_field_names_its_path(path, value, field, problem) -> None:
    doc = _default_doc()
    _set(doc, path, value)
    with pytest.raises(InvalidSpec) as info:
        Spec.from_dict(doc)
    assert info.value.path == field
    assert str(info.value).startswith(f"runtime spec {field}: ") and problem in str(info.value)
    assert isinstance(info.value, InvalidRunOption)           # a bad input: one line, exit 125


def test_not_an_object_and_not_json() -> None:
    with pytest.raises(InvalidSpec, match=r"^runtime spec \(document\): must be an object, not an array$"):
        Spec.from_dict([])
    with pytest.raises(InvalidSpec, match="not JSON"):
        Spec.from_json(b"{")


def test_editing_returns_new_values() -> None:
    spec = Spec("1.0.2", Process(args=("sh",)), Root("/r"), linux=Linux(namespaces=(Namespace("pid"),)))
    labelled = spec.with_annotation("org.pybuild.init", "true").with_annotation("a", "b")
    assert spec.annotations == () and labelled.annotation("org.pybuild.init") == "true"
    assert labelled.with_annotation("org.pybuild.init", "false").annotations == (("org.pybuild.init", "false"),
                                                                                  ("a", "b"))
    extra = Mount("/etc/hosts", "bind", "/c/hosts", ("rbind", "rprivate"))
    assert spec.with_mounts(extra).mounts == (extra,) and spec.mounts == ()
    assert Spec.from_dict(labelled.to_dict()) == labelled
    with pytest.raises(AttributeError):
        spec.hostname = "x"                                   # frozen


def test_sandbox_parses_a_dict_at_the_entry_and_refuses_what_it_cannot_run(tmp_path: Path) -> None:
    from runner import cgroups, sandbox
    from runner.errors import SandboxError

    doc = make_spec({"config": {"Cmd": ["sh"]}}, RunOptions(network="none"), rootfs=str(tmp_path)).to_dict()
    cid = f"ocispec-{tmp_path.name[-12:]}"
    bad = copy.deepcopy(doc)
    bad["process"]["user"]["uid"] = "root"
    with pytest.raises(InvalidSpec, match=r"^runtime spec process\.user\.uid: "):
        sandbox.execute(bad, container_id=cid, forward_signals=False)
    for key, value, message in (("sysctl", {"vm.swappiness": "1"}, "not a namespaced sysctl"),
                                ("namespaces", [{"type": "user"}], "user namespaces are not supported")):
        unsupported = copy.deepcopy(doc)
        unsupported["linux"][key] = value
        with pytest.raises(SandboxError, match=message):
            sandbox.start(unsupported, container_id=cid)
    assert cgroups.open_existing(cid) is None                 # refused before anything was made
