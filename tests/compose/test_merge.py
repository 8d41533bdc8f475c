"""Several -f files merged with the Compose Specification's rules (13-merge.md), the override file
found beside compose.yaml, !reset / !override, and extends (same file, other file, cycles)."""

from __future__ import annotations

import pytest

from compose.errors import ComposeFileError
from compose.load import load_project
from compose.model import Dependency, MountSpec, PortSpec


def _write(d, name, text):
    (d / name).write_text(text)
    return str(d / name)


def _load(d, *names, **kw):
    return load_project([str(d / n) for n in names], environ=kw.pop("environ", {}), **kw)


BASE = """\
services:
  web:
    image: busybox:1
    command: ["echo", "base"]
    entrypoint: ["/bin/sh", "-c"]
    environment:
      - A=1
      - B=2
    labels:
      tier: base
    dns: [1.1.1.1]
    cap_add: [NET_ADMIN]
    ports:
      - "8080:80"
      - "9000:9000"
    volumes:
      - ./one:/data
      - cache:/cache
    depends_on: [db]
    healthcheck:
      test: ["CMD", "true"]
      interval: 10s
  db:
    image: busybox:1
volumes:
  cache: {}
"""

OVERRIDE = """\
services:
  web:
    image: busybox:2
    command: ["echo", "override"]
    environment:
      B: "20"
      C: "3"
    labels: ["extra=yes"]
    dns: [8.8.8.8, 1.1.1.1]
    cap_add: [SYS_TIME]
    ports:
      - target: 80
        published: "8080"
        protocol: tcp
        host_ip: 127.0.0.1
      - "9000:9000"
      - "7000:7000"
    volumes:
      - type: bind
        source: ./two
        target: /data
        read_only: true
    depends_on:
      db:
        condition: service_healthy
    healthcheck:
      test: ["CMD-SHELL", "exit 0"]
  extra:
    image: busybox:3
"""


def test_two_files_merge_by_the_spec(tmp_path):
    _write(tmp_path, "compose.yaml", BASE)
    _write(tmp_path, "override.yaml", OVERRIDE)
    project = _load(tmp_path, "compose.yaml", "override.yaml")
    web = project.service("web")
    assert project.service_names() == ("web", "db", "extra")
    assert web.image == "busybox:2"                                   # scalar: later wins
    assert web.command == ("echo", "override")                        # command: replaced, not appended
    assert web.entrypoint == ("/bin/sh", "-c")                        # kept from the base
    assert web.env() == {"A": "1", "B": "20", "C": "3"}               # list and map merge as mappings
    assert web.label_map() == {"tier": "base", "extra": "yes"}
    assert web.dns == ("1.1.1.1", "8.8.8.8")                          # appended, repeats dropped
    assert web.cap_add == ("NET_ADMIN", "SYS_TIME")
    # ports are unique by (host_ip, target, published, protocol): 9000 merges, 127.0.0.1:8080 is new
    assert web.ports == (PortSpec(80, 8080), PortSpec(9000, 9000), PortSpec(80, 8080, "127.0.0.1"),
                         PortSpec(7000, 7000))
    # volumes are unique by target: /data is merged, paths relative to the project directory
    assert web.volumes[0] == MountSpec(type="bind", target="/data", source=str(tmp_path / "two"), read_only=True)
    assert web.volumes[1].source == "cache"
    assert web.depends_on == (Dependency("db", "service_healthy"),)
    assert web.healthcheck.test == ("CMD-SHELL", "exit 0") and web.healthcheck.interval == 10.0


def test_order_matters(tmp_path):
    _write(tmp_path, "compose.yaml", BASE)
    _write(tmp_path, "override.yaml", OVERRIDE)
    web = _load(tmp_path, "override.yaml", "compose.yaml").service("web")
    assert web.image == "busybox:1" and web.command == ("echo", "base")


def test_override_file_is_found_beside_compose_yaml(tmp_path, monkeypatch):
    _write(tmp_path, "compose.yaml", BASE)
    _write(tmp_path, "compose.override.yaml", "services:\n  web:\n    image: busybox:over\n")
    sub = tmp_path / "sub" / "dir"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)                        # found from a subdirectory, as Docker does
    project = load_project(environ={})
    assert project.files == (str(tmp_path / "compose.yaml"), str(tmp_path / "compose.override.yaml"))
    assert project.service("web").image == "busybox:over"
    assert project.working_dir == str(tmp_path)


def test_override_file_paths_are_relative_to_the_project_directory(tmp_path):
    _write(tmp_path, "compose.yaml", BASE)
    other = tmp_path / "elsewhere"
    other.mkdir()
    _write(other, "o.yaml", "services:\n  web:\n    build: ./ctx\n    env_file: vars.env\n")
    (tmp_path / "vars.env").write_text("FROM_FILE=1\nA=from-file\n")
    web = load_project([str(tmp_path / "compose.yaml"), str(other / "o.yaml")], environ={}).service("web")
    assert web.build.context == str(tmp_path / "ctx")
    # env_file first, then environment over it
    assert web.env() == {"FROM_FILE": "1", "A": "1", "B": "2"}


def test_reset_and_override_tags(tmp_path):
    _write(tmp_path, "compose.yaml", BASE)
    _write(tmp_path, "o.yaml", """\
services:
  web:
    ports: !reset []
    environment: !override
      ONLY: "1"
    depends_on: !reset
    healthcheck: !reset null
  db: !reset
""")
    project = _load(tmp_path, "compose.yaml", "o.yaml")
    web = project.service("web")
    assert web.ports == () and web.env() == {"ONLY": "1"} and web.depends_on == () and web.healthcheck is None
    assert project.service_names() == ("web",)


def test_extends_in_the_same_file(tmp_path):
    _write(tmp_path, "compose.yaml", """\
services:
  common:
    image: busybox
    environment: {LEVEL: common, KEEP: "1"}
    command: ["sh", "-c", "common"]
    ports: ["80"]
  middle:
    extends: common
    environment: {LEVEL: middle}
  web:
    extends:
      service: middle
    command: ["sh", "-c", "web"]
    ports: ["81"]
""")
    web = _load(tmp_path, "compose.yaml").service("web")
    assert web.image == "busybox"
    assert web.env() == {"LEVEL": "middle", "KEEP": "1"}
    assert web.command == ("sh", "-c", "web")
    assert [p.target for p in web.ports] == [80, 81]


def test_extends_another_file_resolves_its_paths_against_that_file(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    _write(lib, "base.yaml", """\
services:
  base:
    build: ./ctx
    volumes: ["./data:/data"]
    environment: {FROM: "${WHERE:-lib}"}
""")
    _write(tmp_path, "compose.yaml", "services:\n  web:\n    extends: {file: lib/base.yaml, service: base}\n")
    web = _load(tmp_path, "compose.yaml", environ={"WHERE": "shell"}).service("web")
    assert web.build.context == str(lib / "ctx")
    assert web.volumes[0].source == str(lib / "data")
    assert web.env() == {"FROM": "shell"}


def test_extends_cycle_and_missing_base(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "compose.yaml", "services:\n  a:\n    extends: b\n    image: x\n  b:\n    extends: a\n")
    with pytest.raises(ComposeFileError, match=r"^compose.yaml:3: services\.a\.extends: circular extends: a -> b -> a"):
        _load(tmp_path, "compose.yaml")
    _write(tmp_path, "compose.yaml", "services:\n  a:\n    image: x\n    extends: nothere\n")
    with pytest.raises(ComposeFileError, match=r"^compose.yaml:4: services\.a\.extends: cannot extend service 'nothere'"):
        _load(tmp_path, "compose.yaml")


def test_anchors_and_merge_keys(tmp_path):
    _write(tmp_path, "compose.yaml", """\
x-common: &common
  image: busybox
  environment: {SHARED: "1"}
services:
  a:
    <<: *common
  b:
    <<: *common
    image: other
""")
    project = _load(tmp_path, "compose.yaml")
    assert project.service("a").image == "busybox" and project.service("b").image == "other"
    assert project.service("b").env() == {"SHARED": "1"}
