"""load_project -> the frozen model: short and long syntax, units, profiles, discovery, project
names, unsupported keys, and the references between services and top-level resources."""

from __future__ import annotations

import dataclasses

import pytest

from compose.errors import ComposeFileError, ComposeFileNotFound
from compose.load import load_project
from compose.model import Dependency, FileRef, HealthSpec, MountSpec, PortSpec, ServiceNetwork, Ulimit


def _load(tmp_path, text, **kw):
    (tmp_path / "compose.yaml").write_text(text)
    return load_project([str(tmp_path / "compose.yaml")], environ=kw.pop("environ", {}), **kw)


def _fails(tmp_path, monkeypatch, text, pattern, **kw):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ComposeFileError, match=pattern) as exc:
        _load(tmp_path, text, **kw)
    return exc.value


def test_the_model_is_frozen_and_tuples(tmp_path):
    project = _load(tmp_path, "services:\n  a:\n    image: busybox\n    command: sleep 1\n")
    a = project.service("a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.image = "x"  # type: ignore[misc]
    for value in dataclasses.astuple(project):
        assert not isinstance(value, (list, dict, set))


def test_ports_short_long_and_ranges(tmp_path):
    web = _load(tmp_path, """\
services:
  web:
    image: busybox
    ports:
      - 3000
      - "8000:80"
      - "127.0.0.1:8001:81"
      - "9090-9091:8080-8081"
      - "[::1]:6001:6001/udp"
      - "5000-5001"
      - target: 82
        published: "8082"
        host_ip: 0.0.0.0
        protocol: udp
        name: web
""").service("web")
    assert web.ports == (
        PortSpec(3000), PortSpec(80, 8000), PortSpec(81, 8001, "127.0.0.1"),
        PortSpec(8080, 9090), PortSpec(8081, 9091), PortSpec(6001, 6001, "::1", "udp"),
        PortSpec(5000), PortSpec(5001), PortSpec(82, 8082, "0.0.0.0", "udp", name="web"))


@pytest.mark.parametrize("port, why", [
    ('"8000-8010:80"', "published port range 8000-8010 for one target port is not supported"),
    ('"80-81:90-92"', "port ranges 80-81 and 90-92 differ in length"),
    ('"70000"', "invalid port range '70000'"),
    ('"1:2:3:4"', "invalid host IP '1:2'"),
])
def test_bad_ports(tmp_path, monkeypatch, port, why):
    _fails(tmp_path, monkeypatch, f"services:\n  web:\n    image: busybox\n    ports:\n      - {port}\n",
           rf"^compose.yaml:5: services\.web\.ports(\[0\])?: .*{why}")


def test_volumes_short_and_long(tmp_path):
    web = _load(tmp_path, """\
services:
  web:
    image: busybox
    volumes:
      - /anon
      - data:/data
      - ./site:/site:ro
      - ~/cache:/cache:rw
      - type: tmpfs
        target: /scratch
        tmpfs: {size: 64m, mode: 1777}
      - type: volume
        source: data
        target: /ro
        read_only: true
        volume: {nocopy: true}
    tmpfs:
      - /run:size=1m,mode=755
      - /tmp
    read_only: true
volumes:
  data:
""", environ={"HOME": "/home/me"}).service("web")
    assert web.volumes == (
        MountSpec("volume", "/anon"),
        MountSpec("volume", "/data", "data"),
        MountSpec("bind", "/site", str(tmp_path / "site"), read_only=True),
        MountSpec("bind", "/cache", "/home/me/cache"),
        MountSpec("tmpfs", "/scratch", tmpfs_size=64 << 20, tmpfs_mode=0o1777),
        MountSpec("volume", "/ro", "data", read_only=True, volume_nocopy=True),
    )
    assert web.tmpfs == (MountSpec("tmpfs", "/run", tmpfs_size=1 << 20, tmpfs_mode=0o755), MountSpec("tmpfs", "/tmp"))
    assert web.read_only is True


def test_undefined_volume_and_network(tmp_path, monkeypatch):
    _fails(tmp_path, monkeypatch, "services:\n  web:\n    image: busybox\n    volumes: [data:/d]\n",
           r"^compose.yaml:4: services\.web\.volumes\[0\]: refers to undefined volume data$")
    _fails(tmp_path, monkeypatch, "services:\n  web:\n    image: busybox\n    networks: [front]\n",
           r"^compose.yaml:4: services\.web\.networks\.front: refers to undefined network front$")


def test_depends_on_list_and_map(tmp_path):
    project = _load(tmp_path, """\
services:
  db: {image: busybox}
  cache: {image: busybox}
  migrate: {image: busybox}
  app:
    image: busybox
    depends_on:
      db: {condition: service_healthy, restart: true}
      migrate: {condition: service_completed_successfully}
      cache: {condition: service_started, required: false}
  web:
    image: busybox
    depends_on: [app]
""")
    assert project.service("app").depends_on == (
        Dependency("db", "service_healthy", restart=True), Dependency("migrate", "service_completed_successfully"),
        Dependency("cache", "service_started", required=False))
    assert project.service("web").depends_on == (Dependency("app"),)


def test_dependency_errors(tmp_path, monkeypatch):
    _fails(tmp_path, monkeypatch, "services:\n  web:\n    image: busybox\n    depends_on: [db]\n",
           r"^compose.yaml:4: services\.web\.depends_on\.db: depends on undefined service db$")
    _fails(tmp_path, monkeypatch, "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n"
           "    depends_on: [a]\n", r"dependency cycle: a -> b -> a")


def test_healthcheck_durations_and_forms(tmp_path):
    project = _load(tmp_path, """\
services:
  a:
    image: busybox
    healthcheck:
      test: wget -q -O- localhost
      interval: 1m30s
      timeout: 500ms
      retries: 3
      start_period: 2s
      start_interval: 1s
  b:
    image: busybox
    healthcheck: {test: ["CMD", "true"]}
  c:
    image: busybox
    healthcheck: {disable: true}
  d:
    image: busybox
    stop_grace_period: 1m
    healthcheck: {test: ["NONE"]}
""")
    assert project.service("a").healthcheck == HealthSpec(("CMD-SHELL", "wget -q -O- localhost"), 90.0, 0.5, 3,
                                                          2.0, 1.0)
    assert project.service("b").healthcheck == HealthSpec(("CMD", "true"))
    assert project.service("c").healthcheck.disable is True
    assert project.service("d").healthcheck.disable is True
    assert project.service("d").stop_grace_period == 60.0


def test_bad_duration(tmp_path, monkeypatch):
    _fails(tmp_path, monkeypatch, "services:\n  a:\n    image: x\n    stop_grace_period: soon\n",
           r"^compose.yaml:4: services\.a\.stop_grace_period: invalid duration 'soon'")


def test_limits_scale_and_ulimits(tmp_path, monkeypatch):
    project = _load(tmp_path, """\
services:
  a:
    image: busybox
    mem_limit: 512m
    cpus: 1.5
    pids_limit: 100
    scale: 3
    ulimits:
      nofile: {soft: 1024, hard: 2048}
      nproc: 64
  b:
    image: busybox
    deploy:
      replicas: 2
      resources:
        limits: {memory: 1g, cpus: "0.5", pids: 10}
""")
    a, b = project.service("a"), project.service("b")
    assert (a.mem_limit, a.cpus, a.pids_limit, a.replicas) == (512 << 20, 1.5, 100, 3)
    assert a.ulimits == (Ulimit("nofile", 1024, 2048), Ulimit("nproc", 64, 64))
    assert (b.mem_limit, b.cpus, b.pids_limit, b.replicas) == (1 << 30, 0.5, 10, 2)
    c = _load(tmp_path, "services:\n  c:\n    image: x\n    mem_reservation: 32m\n    memswap_limit: -1\n"
              "    shm_size: 1g\n    group_add: [wheel, 1000]\n").service("c")
    assert (c.limits.memory_reservation, c.limits.memswap_limit, c.limits.shm_size) == (32 << 20, -1, 1 << 30)
    assert c.group_add == ("wheel", "1000")
    _fails(tmp_path, monkeypatch, "services:\n  a:\n    image: x\n    scale: 2\n    deploy: {replicas: 3}\n",
           r"^compose.yaml:4: services\.a\.scale: scale \(2\) and deploy\.replicas \(3\) disagree")
    _fails(tmp_path, monkeypatch, "services:\n  a:\n    image: x\n    container_name: one\n    scale: 2\n",
           r"^compose.yaml:4: services\.a\.container_name: container_name one cannot be used with 2 replicas")
    _fails(tmp_path, monkeypatch, "services:\n  a:\n    image: x\n    mem_limit: lots\n",
           r"^compose.yaml:4: services\.a\.mem_limit: invalid size 'lots'")
    _fails(tmp_path, monkeypatch, "services:\n  a:\n    image: x\n    deploy: {placement: {constraints: []}}\n",
           r"^compose.yaml:4: services\.a\.deploy\.placement: placement is not supported by pybuild")


@pytest.mark.parametrize("key, value", [
    ("blkio_config", "{weight: 10}"), ("devices", "[/dev/fuse]"), ("links", "[db]"), ("ipc", "host"),
    ("volumes_from", "[db]"), ("gpus", "all"), ("develop", "{}"), ("post_start", "[]"),
])
def test_unsupported_keys_are_errors_naming_them(tmp_path, monkeypatch, key, value):
    err = _fails(tmp_path, monkeypatch, f"services:\n  web:\n    image: busybox\n    {key}: {value}\n",
                 rf"^compose.yaml:4: services\.web\.{key}: {key} is not supported by pybuild$")
    assert err.exit_code == 15


def test_unsupported_nested_and_top_level_keys(tmp_path, monkeypatch):
    _fails(tmp_path, monkeypatch, "services:\n  web:\n    build:\n      context: .\n      ssh: [default]\n",
           r"^compose.yaml:5: services\.web\.build\.ssh: ssh is not supported by pybuild$")
    _fails(tmp_path, monkeypatch, "include: [other.yaml]\nservices: {}\n",
           r"^compose.yaml:1: include: include is not supported by pybuild$")
    _fails(tmp_path, monkeypatch, "services:\n  a: {image: x}\nnetworks:\n  n: {driver: overlay}\n",
           r"^compose.yaml:4: networks\.n\.driver: network driver overlay is not supported")


def test_neither_image_nor_build(tmp_path, monkeypatch):
    _fails(tmp_path, monkeypatch, "services:\n  web:\n    command: [sh]\n",
           r"^compose.yaml:2: services\.web: service has neither an image nor a build context specified$")


def test_profiles(tmp_path):
    text = """\
services:
  web: {image: busybox}
  debug: {image: busybox, profiles: [debug]}
  tool: {image: busybox, profiles: [tools, debug]}
  needs-tool:
    image: busybox
    profiles: [extra]
    depends_on: [tool]
"""
    assert _load(tmp_path, text).service_names() == ("web",)
    p = _load(tmp_path, text)
    assert p.disabled == ("debug", "tool", "needs-tool")
    assert _load(tmp_path, text, profiles=["tools"]).service_names() == ("web", "tool")
    assert _load(tmp_path, text, profiles=["debug"]).service_names() == ("web", "debug", "tool")
    assert _load(tmp_path, text, environ={"COMPOSE_PROFILES": "debug,tools"}).service_names() == \
        ("web", "debug", "tool")
    assert _load(tmp_path, text, profiles=["*"]).service_names() == ("web", "debug", "tool", "needs-tool")
    # a service named on the command line enables its own profiles, as docker compose run does
    assert _load(tmp_path, text, targets=["tool"]).service_names() == ("web", "debug", "tool")
    with pytest.raises(ComposeFileError, match=r"services\.needs-tool\.depends_on\.tool: depends on tool, which is "
                                               r"not enabled by the active profiles \(extra\)"):
        _load(tmp_path, text, profiles=["extra"])
    with pytest.raises(ComposeFileError, match="no such service: nope"):
        _load(tmp_path, text, targets=["nope"])


def test_project_name_precedence(tmp_path):
    d = tmp_path / "My Project.Dir"
    d.mkdir()
    text = "services:\n  a: {image: busybox}\n"
    (d / "compose.yaml").write_text(text)
    f = [str(d / "compose.yaml")]
    assert load_project(f, environ={}).name == "myprojectdir"
    assert load_project(f, environ={"COMPOSE_PROJECT_NAME": "fromenv"}).name == "fromenv"
    (d / "compose.yaml").write_text("name: fromfile\n" + text)
    assert load_project(f, environ={}).name == "fromfile"
    # issue 13's order: -p, name:, COMPOSE_PROJECT_NAME, the directory (Docker's docs put the variable before name:)
    assert load_project(f, environ={"COMPOSE_PROJECT_NAME": "fromenv"}).name == "fromfile"
    assert load_project(f, "cli", environ={"COMPOSE_PROJECT_NAME": "fromenv"}).name == "cli"
    (d / ".env").write_text("COMPOSE_PROJECT_NAME=dotenv\n")
    assert load_project(f, environ={}).name == "fromfile"
    (d / ".env").unlink()
    (d / "compose.yaml").write_text("name: ${PN:-interp}\n" + text)
    assert load_project(f, environ={}).name == "interp"
    (d / ".env").write_text("COMPOSE_PROJECT_NAME=dotenv\n")
    (d / "compose.yaml").write_text(text)
    assert load_project(f, environ={}).name == "dotenv"
    with pytest.raises(ComposeFileError, match=r"invalid project name 'Bad Name' \(-p\)"):
        load_project(f, "Bad Name", environ={})


def test_names_of_networks_and_volumes(tmp_path):
    project = _load(tmp_path, """\
name: demo
services:
  a:
    image: busybox
    volumes: [data:/d, ext:/e, named:/n]
    networks:
      default:
      back: {aliases: [api, a1], ipv4_address: 10.5.0.5}
  b:
    image: busybox
    network_mode: host
  unused-net-user:
    image: busybox
    profiles: [off]
    networks: [lonely]
networks:
  back:
    internal: true
    ipam: {config: [{subnet: 10.5.0.0/24}]}
  outside: {external: true, name: real-outside}
  lonely: {}
volumes:
  data:
  ext: {external: true}
  named: {name: exactly-this}
  spare: {}
""")
    a = project.service("a")
    assert a.networks == (ServiceNetwork("default"), ServiceNetwork("back", ("api", "a1"), "10.5.0.5"))
    assert project.service("b").networks == () and project.service("b").network_mode == "host"
    nets = {n.name: n for n in project.networks}
    assert set(nets) == {"default", "back"}          # only networks that enabled services use
    assert nets["default"].real_name == "demo_default"
    assert nets["back"].real_name == "demo_back" and nets["back"].internal and nets["back"].subnets == ("10.5.0.0/24",)
    vols = {v.name: v for v in project.volumes}
    assert set(vols) == {"data", "ext", "named"}
    assert vols["data"].real_name == "demo_data"
    assert vols["ext"].external and vols["ext"].real_name == "ext"
    assert vols["named"].real_name == "exactly-this"


def test_environment_env_file_and_bare_keys(tmp_path, monkeypatch):
    (tmp_path / "a.env").write_text("A=from-a\nSHARED=a\nBARE\n")
    (tmp_path / "b.env").write_text("SHARED=b\n")
    web = _load(tmp_path, """\
services:
  web:
    image: busybox
    env_file: [a.env, b.env, {path: missing.env, required: false}]
    environment:
      - SHARED=env
      - FROM_SHELL
      - NOT_SET_ANYWHERE
""", environ={"FROM_SHELL": "shell", "BARE": "bare"}).service("web")
    assert web.environment == (("A", "from-a"), ("SHARED", "env"), ("BARE", "bare"), ("FROM_SHELL", "shell"))
    (tmp_path / "raw.env").write_text("Q='quoted ${X}' # kept\n")
    raw = _load(tmp_path, "services:\n  web:\n    image: busybox\n    env_file: [{path: raw.env, format: raw}]\n")
    assert raw.service("web").environment == (("Q", "'quoted ${X}' # kept"),)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ComposeFileNotFound, match="env file .*missing.env not found"):
        _load(tmp_path, "services:\n  web:\n    image: busybox\n    env_file: missing.env\n")


def test_command_entrypoint_and_misc(tmp_path):
    web = _load(tmp_path, """\
services:
  web:
    image: busybox
    command: sh -c 'echo "hi there"'
    entrypoint: []
    user: "1000"
    init: true
    restart: on-failure:3
    extra_hosts: ["db.local:10.0.0.2", "other=10.0.0.3"]
    dns: 1.1.1.1
    labels: {a: 1, b: true}
    cap_add: [NET_ADMIN]
    cap_drop: [ALL]
    expose: ["80", "9000-9001/udp"]
    pull_policy: if_not_present
""").service("web")
    assert web.command == ("sh", "-c", 'echo "hi there"')
    assert web.entrypoint == ()
    assert (web.user, web.init, web.restart) == ("1000", True, "on-failure:3")
    assert web.extra_hosts == (("db.local", "10.0.0.2"), ("other", "10.0.0.3"))
    assert web.dns == ("1.1.1.1",)
    assert web.labels == (("a", "1"), ("b", "true"))
    assert web.expose == ("80", "9000/udp", "9001/udp")
    assert web.pull_policy == "missing"


def test_secrets_and_configs(tmp_path, monkeypatch):
    (tmp_path / "pw.txt").write_text("s3cret")
    project = _load(tmp_path, """\
services:
  web:
    image: busybox
    secrets: [pw, {source: pw, target: other, mode: 0400}]
    configs: [{source: conf, target: /etc/app.conf}, inline]
secrets:
  pw: {file: ./pw.txt}
configs:
  conf: {file: ./pw.txt}
  inline: {content: "x=1"}
""")
    web = project.service("web")
    assert web.secrets == (FileRef("pw", "/run/secrets/pw", str(tmp_path / "pw.txt")),
                           FileRef("pw", "/run/secrets/other", str(tmp_path / "pw.txt"), mode=0o400))
    assert web.configs == (FileRef("conf", "/etc/app.conf", str(tmp_path / "pw.txt")), FileRef("inline", "/inline"))
    assert [c.content for c in project.configs] == [None, "x=1"]
    _fails(tmp_path, monkeypatch, "services:\n  web:\n    image: x\n    secrets: [nope]\n",
           r"^compose.yaml:4: services\.web\.secrets\[0\]: refers to undefined secret nope$")


def test_discovery_order_and_compose_file_variable(tmp_path, monkeypatch):
    (tmp_path / "docker-compose.yml").write_text("services:\n  old: {image: busybox}\n")
    monkeypatch.chdir(tmp_path)
    assert load_project(environ={}).service_names() == ("old",)
    (tmp_path / "compose.yaml").write_text("services:\n  new: {image: busybox}\n")
    assert load_project(environ={}).service_names() == ("new",)      # compose.yaml comes first
    (tmp_path / "x.yaml").write_text("services:\n  x: {image: busybox}\n")
    (tmp_path / "y.yaml").write_text("services:\n  y: {image: busybox}\n")
    assert load_project(environ={"COMPOSE_FILE": "x.yaml:y.yaml"}).service_names() == ("x", "y")


def test_nothing_found(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    with pytest.raises(ComposeFileNotFound, match="no configuration file provided: not found") as exc:
        load_project(environ={})
    assert exc.value.exit_code == 14
    with pytest.raises(ComposeFileNotFound, match="nope.yaml: no such file or directory"):
        load_project(["nope.yaml"], environ={})


def test_stdin_file(tmp_path, monkeypatch):
    import io
    monkeypatch.chdir(tmp_path)
    project = load_project(["-"], environ={}, stdin=io.StringIO("services:\n  s: {image: busybox}\n"))
    assert project.service_names() == ("s",) and project.working_dir == str(tmp_path)
