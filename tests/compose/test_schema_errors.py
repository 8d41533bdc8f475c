"""Schema validation and its errors: compose.schema agrees with jsonschema (the reference
implementation, a test dependency) on a corpus of valid and broken documents, and every error a
user sees names the file, the line and the path inside."""

from __future__ import annotations

import copy
import filecmp
import json
from pathlib import Path

import pytest

from compose.errors import ComposeFileError
from compose.load import load_project
from compose.schema import errors_of, schema_path

ROOT = Path(__file__).resolve().parents[2]

RICH = {
    "name": "demo",
    "services": {
        "web": {
            "image": "busybox", "command": ["sh", "-c", "x"], "entrypoint": "sh",
            "environment": {"A": "1", "B": None, "C": 2, "D": True}, "env_file": ["a.env", {"path": "b.env"}],
            "ports": [80, "8080:80", {"target": 81, "published": "8081", "protocol": "tcp"}],
            "expose": ["80", 81], "volumes": ["data:/data", {"type": "bind", "source": ".", "target": "/src"}],
            "networks": {"front": {"aliases": ["w"]}, "back": None}, "depends_on": {"db": {"condition": "service_healthy"}},
            "healthcheck": {"test": ["CMD", "true"], "interval": "5s", "retries": 3},
            "deploy": {"replicas": 2, "resources": {"limits": {"memory": "1g", "cpus": "0.5"}}},
            "ulimits": {"nofile": {"soft": 1, "hard": 2}, "nproc": 5}, "labels": ["a=b"], "cap_add": ["X"],
            "extra_hosts": ["h:1.2.3.4"], "dns": "1.1.1.1", "tmpfs": ["/t"], "read_only": False,
            "restart": "always", "secrets": ["s", {"source": "s", "target": "t", "mode": 292}],
            "build": {"context": ".", "args": {"X": "1"}, "cache_from": ["a"]}, "profiles": ["p"], "init": True,
            "stop_grace_period": "10s", "mem_limit": "1g", "cpus": 1.5, "pids_limit": 10, "x-ext": {"any": 1},
        },
        "db": {"image": "busybox", "depends_on": ["web"], "scale": 1},
    },
    "networks": {"front": {"driver": "bridge", "internal": True, "ipam": {"config": [{"subnet": "10.0.0.0/24"}]}},
                 "back": None, "ext": {"external": True}},
    "volumes": {"data": None, "ext": {"external": True, "name": "x"}},
    "secrets": {"s": {"file": "./s"}},
    "configs": {"c": {"content": "x"}},
    "x-top": [1, 2],
}

ODD_VALUES = [None, True, 7, "text", ["a"], {"zz": 1}]


def _leaf_paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaf_paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaf_paths(v, path + (i,))


def _replaced(doc, path, new):
    doc = copy.deepcopy(doc)
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = new
    return doc


def _corpus():
    yield RICH
    for path in _leaf_paths(RICH):
        if not path:
            continue
        for odd in ODD_VALUES:
            yield _replaced(RICH, path, odd)
        if isinstance(path[-1], str):   # an unknown key beside each known one
            yield _replaced(RICH, path[:-1] + ("bogus_key",), 1) if path[:-1] else {**RICH, "bogus_key": 1}


def test_packaged_schema_is_the_testdata_copy_with_its_licence():
    assert filecmp.cmp(schema_path(), ROOT / "testdata/compose/compose-spec.json", shallow=False)
    licence = (ROOT / "testdata/compose/LICENSE.compose-spec").read_text()
    assert "Apache License" in licence and "Version 2.0" in licence and "compose-spec" in licence


def test_agrees_with_jsonschema_on_a_corpus():
    import jsonschema  # the reference implementation, a test dependency (pyproject [test])

    with open(schema_path()) as fh:
        reference = jsonschema.Draft7Validator(json.load(fh))
    checked = disagreements = 0
    invalid = 0
    for doc in _corpus():
        ours = errors_of(doc)
        theirs = list(reference.iter_errors(doc))
        checked += 1
        invalid += bool(theirs)
        if bool(ours) != bool(theirs):
            disagreements += 1
            pytest.fail(f"verdicts differ on {json.dumps(doc)[:300]}: ours {[e.message for e in ours]} "
                        f"jsonschema {[e.message for e in theirs]}")
        # the places we blame are places jsonschema blames too
        blamed = {tuple(e.absolute_path) for e in theirs}
        for e in theirs:
            blamed |= {tuple(c.absolute_path) for c in e.context}
        for e in ours:
            assert tuple(e.absolute_path) in blamed, (e.message, doc)
    assert checked > 500 and invalid > 300 and disagreements == 0


def _error(tmp_path, monkeypatch, text) -> str:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "compose.yaml").write_text(text)
    with pytest.raises(ComposeFileError) as exc:
        load_project(["compose.yaml"], environ={})
    assert exc.value.exit_code == 15
    return str(exc.value)


@pytest.mark.parametrize("text, message", [
    ("services:\n  web:\n    image: busybox\n    ports:\n      - {target: 80, bogus: 1}\n",
     "compose.yaml:5: services.web.ports[0]: additional property bogus is not allowed"),
    ("services:\n  web:\n    image: busybox\n    imgae: typo\n",
     "compose.yaml:4: services.web: additional property imgae is not allowed"),
    ("services:\n  web:\n    image: [busybox]\n",
     "compose.yaml:3: services.web.image: must be a string, not a list"),
    ("services:\n  web:\n    image: busybox\n    depends_on:\n      db: {restart: true}\n  db: {image: x}\n",
     "compose.yaml:5: services.web.depends_on.db: condition is required"),
    ("services:\n  web:\n    image: busybox\n    depends_on:\n      db: {condition: sometime}\n",
     "compose.yaml:5: services.web.depends_on.db.condition: must be one of service_started, service_healthy, "
     "service_completed_successfully, not 'sometime'"),
    ("services:\n  web:\n    image: busybox\n    ports: [true]\n",
     "compose.yaml:4: services.web.ports[0]: must be a number, a string or a mapping, not a boolean"),
    ("services:\n  web:\n    image: busybox\n    cap_add: [A, A]\n",
     "compose.yaml:4: services.web.cap_add: contains duplicate entries"),
    ("services:\n  bad name!: {image: busybox}\n",
     "compose.yaml:2: services: additional property bad name! is not allowed"),
    ("version: '3'\nservices: []\n", "compose.yaml:2: services: must be a mapping, not a list"),
    ("services:\n  web:\n    image: busybox\n    depends_on:\n",
     "compose.yaml:4: services.web.depends_on: must be a list or a mapping, not null"),
    ("services:\n  web:\n    image: busybox\n    volumes:\n      - {source: /x}\n",
     "compose.yaml:5: services.web.volumes[0]: type is required"),
])
def test_schema_error_messages(tmp_path, monkeypatch, text, message):
    assert _error(tmp_path, monkeypatch, text) == message


@pytest.mark.parametrize("text, message", [
    ("services:\n  web:\n    image: [unclosed\n", r"^compose.yaml:4: invalid YAML: "),
    ("services:\n  web:\n    image: a\n    image: b\n", r"^compose.yaml:4: mapping key 'image' already defined at line 3$"),
    ("- just\n- a list\n", r"^compose.yaml:1: top-level object must be a mapping$"),
    ("services:\n\tweb: {}\n", r"^compose.yaml:2: invalid YAML: .*\(a tab: indent with spaces\)$"),
    ("a: 1\n---\nb: 2\n", r"^compose.yaml:3: more than one YAML document"),
    ("services:\n  web: &a\n    image: busybox\n    labels: *a\n", r"^compose.yaml:2: recursive YAML alias$"),
])
def test_yaml_errors_name_the_line(tmp_path, monkeypatch, text, message):
    import re
    assert re.search(message, _error(tmp_path, monkeypatch, text))


def test_yaml_1_2_scalars(tmp_path):
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    image: busybox\n    ports: [22:22]\n    environment: {ON: yes, OFF: off}\n")
    web = load_project([str(tmp_path / "compose.yaml")], environ={}).service("web")
    assert web.ports[0].target == 22 and web.ports[0].published == 22   # not the sexagesimal 1342
    assert web.env() == {"ON": "yes", "OFF": "off"}
