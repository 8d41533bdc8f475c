"""The container state machine: every status change goes through ``ContainerStore.move``, which
checks it against ``runner.records.TRANSITIONS`` under the container's lock."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from runner import records as r
from runner.errors import CorruptRecord, InvalidState
from runner.ocispec import Process, Root, Spec
from runner.state import ContainerStore

# the paths from the first state (created) to each state, through legal moves only
_PATH_TO = {
    r.CREATED: [],
    r.RUNNING: [r.RUNNING],
    r.PAUSED: [r.RUNNING, r.PAUSED],
    r.EXITED: [r.EXITED],
    r.RESTARTING: [r.EXITED, r.RESTARTING],
    r.DEAD: [r.DEAD],
}
LEGAL = sorted((a, b) for a, dests in r.TRANSITIONS.items() for b in dests)
ILLEGAL = sorted((a, b) for a in r.STATUSES for b in r.STATUSES if b not in r.TRANSITIONS[a])


def _cfg(name: str) -> r.ContainerConfig:
    return r.ContainerConfig(id=r.new_id(), name=name, image="busybox", image_id="sha256:" + "a" * 64,
                             spec=Spec("1.0.2", Process(("true",)), Root("/")), created=time.time())


@pytest.fixture
def store(tmp_path):
    return ContainerStore(str(tmp_path / "root"), str(tmp_path / "state"))


def _at(store: ContainerStore, status: str) -> r.ContainerConfig:
    cfg = store.create(_cfg(f"c-{status}"))
    for step in _PATH_TO[status]:
        store.move(cfg.id, cfg.name, step)
    assert store.read_state(cfg.id).status == status
    return cfg


def test_every_status_is_in_the_table_and_reachable():
    assert set(r.TRANSITIONS) == set(r.STATUSES) == set(_PATH_TO)
    assert ILLEGAL and LEGAL


@pytest.mark.parametrize("current,wanted", LEGAL)
def test_every_legal_move_works(store, current, wanted):
    cfg = _at(store, current)
    new = store.move(cfg.id, cfg.name, wanted, exit_code=3)
    assert (new.status, new.exit_code) == (wanted, 3)
    assert store.read_state(cfg.id) == new                  # written, and read back the same


@pytest.mark.parametrize("current,wanted", ILLEGAL)
def test_an_illegal_move_raises_naming_both_states(store, current, wanted):
    cfg = _at(store, current)
    with pytest.raises(InvalidState, match=f"container {cfg.name}: cannot go from {current} to {wanted}") as err:
        store.move(cfg.id, cfg.name, wanted)
    assert (err.value.current, err.value.wanted) == (current, wanted)
    assert store.read_state(cfg.id).status == current       # nothing written


def test_an_old_restarting_flag_reads_as_the_restarting_state(store):
    cfg = store.create(_cfg("old"))
    path = os.path.join(store.dir(cfg.id), "state.json")
    with open(path, "w") as f:       # what pybuild wrote before "restarting" was a status
        json.dump({"status": "exited", "pid": 0, "exit_code": 1, "started_at": 1.0, "finished_at": 2.0,
                   "restart_count": 2, "restarting": True, "oom_killed": False, "error": "", "shim_pid": 0}, f)
    s = store.read_state(cfg.id)
    assert (s.status, s.restarting, s.exit_code, s.restart_count) == (r.RESTARTING, True, 1, 2)
    assert store.move(cfg.id, cfg.name, r.RUNNING).status == r.RUNNING
    with open(path) as f:
        assert "restarting" not in json.load(f)              # the flag is gone once rewritten


def test_an_unknown_status_is_a_corrupt_record(store):
    cfg = store.create(_cfg("odd"))
    with open(os.path.join(store.dir(cfg.id), "state.json"), "w") as f:
        json.dump({"status": "sleeping"}, f)
    with pytest.raises(CorruptRecord, match="state.json: corrupt container state: unknown status 'sleeping'"):
        store.read_state(cfg.id)


def test_move_takes_the_lock_and_is_reentrant(store):
    """``move`` inside a ``lock`` block of the same thread does not deadlock; another thread's move
    waits for the block to end."""
    cfg = store.create(_cfg("locked"))
    order = []
    with store.lock(cfg.id):
        store.move(cfg.id, cfg.name, r.RUNNING)            # same thread: re-entrant
        t = threading.Thread(target=lambda: order.append(store.move(cfg.id, cfg.name, r.EXITED).status))
        t.start()
        t.join(0.3)
        assert t.is_alive() and order == []                  # held by this block
        order.append("released")
    t.join(5)
    assert order == ["released", r.EXITED]


def test_an_old_config_with_extra_reads_as_typed_fields():
    """Records written before ``lowerdirs``/``launcher`` were fields kept them in ``extra``."""
    new = _cfg("typed")
    doc = json.loads(new.to_json())
    del doc["lowerdirs"], doc["launcher"]
    doc["extra"] = {"lowerdirs": ["/s/2", "/s/1"], "launcher": "host"}
    old = r.ContainerConfig.from_json(json.dumps(doc).encode(), "config.json")
    assert (old.lowerdirs, old.launcher) == (("/s/2", "/s/1"), "host")
    doc["extra"] = {"lowerdirs": ["/s/1"]}
    assert r.ContainerConfig.from_json(json.dumps(doc).encode(), "config.json").launcher == "sandbox"
    again = r.ContainerConfig.from_json(old.to_json(), "config.json")
    assert again == old and "extra" not in json.loads(old.to_json())


def test_config_json_keeps_its_shape_with_typed_ports_and_network():
    """``ports`` and ``network`` are typed in memory and the same JSON on disk as before."""
    port = {"container_port": 53, "protocol": "udp", "host_ip": "::", "host_port": 5353, "host_port_end": 5360}
    net = {"mode": "web", "container_id": "c" * 64, "netns_path": "/run/netns/x", "hostname": "h",
           "etc_files": {"hosts": "/e/hosts"}, "network": "web", "ip": "10.0.0.2", "prefixlen": 24,
           "gateway": "10.0.0.1", "mac": "02:50:0a:00:00:02", "bridge": "pb0", "host_veth": "pbx", "nat": "ok",
           "notes": ["moved"]}
    doc = json.loads(_cfg("shape").to_json())
    assert doc["ports"] == [] and doc["network"] == {"mode": "bridge"}
    doc["ports"], doc["network"] = [port], net
    cfg = r.ContainerConfig.from_json(json.dumps(doc).encode(), "config.json")
    assert cfg.ports == (r.PublishedPort(53, "udp", "::", 5353, 5360),)
    assert cfg.network.ip == "10.0.0.2" and cfg.network.notes == ("moved",) and cfg.network_mode == "web"
    again = json.loads(cfg.to_json())
    assert again["ports"] == [port] and again["network"] == net
    old = dict(doc, network={})                  # a record from before network setup existed
    assert r.ContainerConfig.from_json(json.dumps(old).encode(), "config.json").network_mode == "bridge"


def test_config_json_keeps_the_spec_as_the_runtime_spec_document():
    """``spec`` is a typed :class:`runner.ocispec.Spec` in memory and the runtime spec's JSON on disk;
    a record written when it was a dict (with an empty ``annotations`` map) reads the same."""
    spec = {"ociVersion": "1.0.2", "hostname": "h", "annotations": {},
            "process": {"terminal": False, "user": {"uid": 1, "gid": 2}, "args": ["sh"], "env": ["A=1"],
                        "cwd": "/w", "noNewPrivileges": True},
            "root": {"path": "/r", "readonly": False},
            "mounts": [{"destination": "/etc/hosts", "type": "bind", "source": "/e/hosts",
                        "options": ["rbind", "rprivate"]}],
            "linux": {"namespaces": [{"type": "mount"}, {"type": "network", "path": "/run/netns/x"}]}}
    doc = dict(json.loads(_cfg("spec").to_json()), spec=spec)
    cfg = r.ContainerConfig.from_json(json.dumps(doc).encode(), "config.json")
    assert isinstance(cfg.spec, Spec) and cfg.spec.process.args == ("sh",) and cfg.spec.hostname == "h"
    assert cfg.spec.mounts[0].options == ("rbind", "rprivate") and cfg.spec.linux.namespaces[1].path == "/run/netns/x"
    again = json.loads(cfg.to_json())["spec"]
    assert again == {k: v for k, v in spec.items() if k != "annotations"}
    assert r.ContainerConfig.from_json(cfg.to_json(), "config.json") == cfg


def test_a_malformed_spec_is_a_corrupt_record():
    doc = json.loads(_cfg("bad").to_json())
    doc["spec"]["process"]["args"] = "sh"
    cfg = r.ContainerConfig.from_json(json.dumps(doc).encode(), "config.json")   # the spec is read lazily
    with pytest.raises(CorruptRecord, match=r"config.json: corrupt container config: .*spec.process.args"):
        cfg.spec
    with pytest.raises(CorruptRecord, match=r"config.json: corrupt container config: .*spec.process.args"):
        cfg.command
    doc["spec"] = "not an object"
    with pytest.raises(CorruptRecord, match=r"config.json: corrupt container config: spec: expected an object"):
        r.ContainerConfig.from_json(json.dumps(doc).encode(), "config.json")
