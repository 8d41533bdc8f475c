"""runner.spec: image config + RunOptions -> runtime spec (pure), schema-valid, golden files.

Golden files live in ``testdata/runtime-spec/<case>.json``; regenerate with
``PYBUILD_UPDATE_GOLDEN=1 .venv/bin/pytest tests/runner/test_spec.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from runner.caps import DEFAULT_CAPS, resolve_caps
from runner.errors import InvalidRunOption
from runner.ocispec import Cpu, Memory, Namespace, Pids, Rlimit, Spec, User
from runner.options import BindMount, RunOptions, TmpfsMount, parse_bytes, parse_env_file, parse_volume
from runner.spec import MASKED_PATHS, clamp_rlimits, make_spec, resolve_user

TESTDATA = Path(__file__).resolve().parents[2] / "testdata"
SCHEMAS = TESTDATA / "oci-schemas" / "runtime-spec"
GOLDEN = TESTDATA / "runtime-spec"

IMAGE = {
    "architecture": "amd64", "os": "linux",
    "config": {
        "Entrypoint": ["/bin/entry"], "Cmd": ["--serve", "80"], "Env": ["PATH=/usr/bin:/bin", "A=image", "B=1"],
        "WorkingDir": "/srv", "User": "www-data", "Labels": {"org.example.team": "core"},
        "StopSignal": "SIGQUIT", "ExposedPorts": {"80/tcp": {}, "53/udp": {}}, "Volumes": {"/data": {}},
    },
    "rootfs": {"type": "layers", "diff_ids": []},
}


def validate(spec: Spec | dict) -> None:
    """Validate ``spec`` (a :class:`Spec` is serialised first) against runtime-spec's config-schema.json."""
    if isinstance(spec, Spec):
        spec = spec.to_dict()

    def retrieve(uri: str) -> Resource:
        return Resource.from_contents(json.loads((SCHEMAS / uri.rsplit("/", 1)[-1]).read_text()),
                                      default_specification=DRAFT4)

    schema = json.loads((SCHEMAS / "config-schema.json").read_text())
    jsonschema.Draft4Validator(schema, registry=Registry(retrieve=retrieve)).validate(spec)


@pytest.fixture
def etc(tmp_path: Path) -> str:
    d = tmp_path / "etc"
    d.mkdir()
    (d / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www:/var/www:/bin/false\n"
                              "alice:x:1000:1000::/home/alice:/bin/sh\n")
    (d / "group").write_text("root:x:0:\nwww-data:x:33:\nalice:x:1000:\nstaff:x:50:alice,bob\nvideo:x:44:alice\n")
    return str(d)


def golden(name: str, spec: Spec) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(spec.to_dict(), indent=2, sort_keys=True) + "\n"
    if os.environ.get("PYBUILD_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"golden file {path} missing: run with PYBUILD_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"spec differs from {path}"


def test_image_defaults_golden_and_schema(etc: str) -> None:
    spec = make_spec(IMAGE, RunOptions(), rootfs="/r", etc_dir=etc, container_id="0123456789abcdef")
    validate(spec)
    golden("image-defaults", spec)
    p = spec.process
    assert p.args == ("/bin/entry", "--serve", "80")
    assert p.user == User(uid=33, gid=33)
    assert p.cwd == "/srv"
    assert "PATH=/usr/bin:/bin" in p.env and "HOSTNAME=0123456789ab" in p.env and "HOME=/var/www" in p.env
    assert spec.hostname == "0123456789ab"
    assert list(p.capabilities.bounding) == sorted(DEFAULT_CAPS, key=lambda c: resolve_caps().index(c))
    assert p.capabilities.effective == ()               # non-root user: no effective caps
    assert p.no_new_privileges is True
    assert spec.linux.masked_paths == MASKED_PATHS
    assert "/proc/sys" in spec.linux.readonly_paths
    assert spec.linux.resources.pids == Pids(4096)
    assert spec.annotation("org.opencontainers.image.stopSignal") == "SIGQUIT"
    assert spec.annotation("org.opencontainers.image.exposedPorts") == "53/udp,80/tcp"
    assert spec.annotation("org.example.team") == "core"
    assert Namespace("network") in spec.linux.namespaces


def test_all_options_golden_and_schema(etc: str) -> None:
    opts = RunOptions(
        command=("sh", "-c", "true"), entrypoint=(), env=("A=run", "C=3"), user="alice:staff", workdir="/w",
        hostname="box", mounts=(BindMount("/host/data", "/data", True),), tmpfs=(TmpfsMount("/t", "size=1m"),),
        read_only=True, cap_add=("sys_admin",), cap_drop=("NET_RAW", "mknod"), memory=parse_bytes("64m"),
        cpus=0.5, pids_limit=100, network="none", tty=True,
    )
    spec = make_spec(IMAGE, opts, rootfs="/r", etc_dir=etc)
    validate(spec)
    golden("all-options", spec)
    p = spec.process
    assert p.args == ("sh", "-c", "true")                  # --entrypoint "" drops entrypoint and image Cmd
    assert p.user == User(uid=1000, gid=50)
    env = p.env_map()
    assert env["A"] == "run" and env["B"] == "1" and env["C"] == "3" and env["TERM"] == "xterm"
    assert spec.root.readonly is True and p.terminal is True
    caps = p.capabilities.bounding
    assert "CAP_SYS_ADMIN" in caps and "CAP_NET_RAW" not in caps and "CAP_MKNOD" not in caps
    res = spec.linux.resources
    assert res.memory == Memory(limit=64 << 20, swap=64 << 20)
    assert res.cpu == Cpu(quota=50000, period=100000)
    assert res.pids == Pids(100)
    mounts = {m.destination: m for m in spec.mounts}
    assert mounts["/data"].options == ("rbind", "ro") and mounts["/t"].type == "tmpfs"


def test_privileged_and_host_network(etc: str) -> None:
    spec = make_spec({"config": {"Cmd": ["sh"]}}, RunOptions(privileged=True, network="host"), rootfs="/r", etc_dir=etc)
    validate(spec)
    assert "maskedPaths" not in spec.to_dict()["linux"] and "seccomp" not in spec.to_dict()["linux"]
    assert spec.linux.masked_paths == () and spec.linux.seccomp is None
    assert len(spec.process.capabilities.effective) >= 40
    assert all(ns.type not in ("network", "uts") for ns in spec.linux.namespaces)
    assert spec.hostname is None and "hostname" not in spec.to_dict()   # --network host: the host's UTS ns
    named = make_spec({"config": {"Cmd": ["sh"]}}, RunOptions(network="host", hostname="h"), rootfs="/r")
    assert named.hostname == "h" and named.linux.has_namespace("uts")
    joined = make_spec({"config": {"Cmd": ["sh"]}}, RunOptions(netns_path="/run/netns/x"), rootfs="/r")
    assert Namespace("network", "/run/netns/x") in joined.linux.namespaces


@pytest.mark.parametrize("entrypoint,cmd,opt_ep,opt_cmd,expected", [
    (["/e"], ["c"], None, None, ["/e", "c"]),
    (["/e"], ["c"], None, ("x",), ["/e", "x"]),
    (["/e"], ["c"], ("/o",), None, ["/o"]),                 # --entrypoint drops the image Cmd
    (["/e"], ["c"], ("/o",), ("y",), ["/o", "y"]),
    (None, ["c", "d"], None, None, ["c", "d"]),
    (["/e"], None, (), ("z",), ["z"]),
])
def test_entrypoint_cmd_rules(entrypoint, cmd, opt_ep, opt_cmd, expected) -> None:
    cfg = {"config": {"Entrypoint": entrypoint, "Cmd": cmd}}
    spec = make_spec(cfg, RunOptions(entrypoint=opt_ep, command=opt_cmd), rootfs="/r")
    assert list(spec.process.args) == expected


def test_no_command_is_an_error() -> None:
    with pytest.raises(InvalidRunOption, match="no command"):
        make_spec({"config": {}}, RunOptions(), rootfs="/r")


def test_malformed_image_config_names_the_field() -> None:
    with pytest.raises(InvalidRunOption, match=r"^image config config\.Cmd: must be a list of strings, got str$"):
        make_spec({"config": {"Cmd": "sh"}}, RunOptions(), rootfs="/r")
    with pytest.raises(InvalidRunOption, match=r"^image config: not a JSON object$"):
        make_spec(b"[1]", RunOptions(), rootfs="/r")


@pytest.mark.parametrize("user,expected", [
    (None, (0, 0, (), "/root")),
    ("", (0, 0, (), "/root")),
    ("alice", (1000, 1000, (50, 44), "/home/alice")),
    ("1000", (1000, 1000, (50, 44), "/home/alice")),
    ("1000:44", (1000, 44, (), "/home/alice")),
    ("alice:staff", (1000, 50, (), "/home/alice")),
    ("4242", (4242, 0, (), "/")),
    ("4242:4343", (4242, 4343, (), "/")),
    ("www-data", (33, 33, (), "/var/www")),
])
def test_resolve_user(etc: str, user, expected) -> None:
    assert tuple(resolve_user(user, etc)) == expected


def test_resolve_user_errors(etc: str) -> None:
    with pytest.raises(InvalidRunOption, match="unable to find user mallory"):
        resolve_user("mallory", etc)
    with pytest.raises(InvalidRunOption, match="unable to find group nope"):
        resolve_user("alice:nope", etc)


def test_passwd_symlink_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    secret = tmp_path / "host-passwd"
    secret.write_text("root:x:0:0::/:/bin/sh\nhostuser:x:7:7::/:/bin/sh\n")
    os.symlink(secret, tmp_path / "etc" / "passwd")
    with pytest.raises(InvalidRunOption, match="symlink"):
        resolve_user("hostuser", str(tmp_path / "etc"))


def test_clamp_rlimits() -> None:
    spec = make_spec({"config": {"Cmd": ["sh"]}}, RunOptions(), rootfs="/r")
    assert clamp_rlimits(spec, {"RLIMIT_NOFILE": 1024}).process.rlimits == (Rlimit("RLIMIT_NOFILE", 1024, 1024),)
    assert spec.process.rlimits[0].hard == 1048576      # the input is a value: unchanged


def test_option_parsers(tmp_path: Path, monkeypatch) -> None:
    assert parse_bytes("512m") == 512 << 20 and parse_bytes("1g") == 1 << 30 and parse_bytes("4096") == 4096
    with pytest.raises(InvalidRunOption, match="--memory"):
        parse_bytes("lots")
    assert parse_volume("/a:/b:ro") == BindMount("/a", "/b", True)
    assert parse_volume("vol:/b:ro") == BindMount("", "/b", True, volume="vol")
    with pytest.raises(InvalidRunOption, match="volume name '-x'"):
        parse_volume("-x:/b")
    with pytest.raises(InvalidRunOption, match="needs the container store"):
        make_spec({"config": {"Cmd": ["sh"]}}, RunOptions(mounts=(parse_volume("vol:/b"),)), rootfs="/r")
    with pytest.raises(InvalidRunOption, match="absolute"):
        RunOptions(mounts=(BindMount("/a", "rel"),))
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nA=1\n\nFROM_HOST\nMISSING_HERE\nB=x=y\n")
    monkeypatch.setenv("FROM_HOST", "h")
    monkeypatch.delenv("MISSING_HERE", raising=False)
    assert parse_env_file(str(env_file)) == ("A=1", "FROM_HOST=h", "B=x=y")
    with pytest.raises(InvalidRunOption, match="minimum memory"):
        RunOptions(memory=1024)


def test_caps_resolution() -> None:
    assert resolve_caps(cap_drop=("ALL",), cap_add=("chown",)) == ["CAP_CHOWN"]
    with pytest.raises(InvalidRunOption, match="unknown capability"):
        resolve_caps(cap_add=("CAP_FLY",))
    assert len(resolve_caps()) == 14


def test_image_volumes_become_binds_of_the_volume_dir(etc: str) -> None:
    image = {"config": {"Cmd": ["sh"], "Volumes": {"/var/lib/db/": {}, "/logs": {}, "/cache": {}}}}
    opts = RunOptions(mounts=(BindMount("/srv/logs", "/logs"),), tmpfs=(TmpfsMount("/cache"),))
    spec = make_spec(image, opts, rootfs="/r", etc_dir=etc, volume_dir="/c/volumes")
    validate(spec)
    binds = [(m.destination, m.source) for m in spec.mounts if m.type == "bind"]
    # /logs and /cache are the user's; the index is the volume's place in the sorted list
    assert binds == [("/logs", "/srv/logs"), ("/var/lib/db", "/c/volumes/2")]
    assert all(m.type != "bind" for m in make_spec(image, RunOptions(), rootfs="/r", etc_dir=etc).mounts)
    with pytest.raises(InvalidRunOption, match="must be an absolute path"):
        make_spec({"config": {"Cmd": ["sh"], "Volumes": {"data": {}}}}, RunOptions(), rootfs="/r",
                  volume_dir="/c/volumes")
