"""``pybuild compose config`` through the real command: the normalised YAML, --services,
--volumes, -q, the group options (-f, -p, --env-file, --profile, --project-directory), and the
error paths (one line naming file:line:path, non-zero exit, nothing created by up)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from compose.load import load_project

COMPOSE = """\
services:
  web:
    image: "busybox:${TAG:-latest}"
    ports: ["8080:80"]
    depends_on:
      app: {condition: service_healthy}
    volumes: [data:/data, ./site:/site:ro]
  app:
    build: {context: ./app, args: [MODE=prod]}
    command: sh -c 'echo "up"'
    healthcheck: {test: "true", interval: 90s, timeout: 500ms}
    deploy: {replicas: 2, resources: {limits: {memory: 64m}}}
    environment: {LEVEL: "${LEVEL:?set LEVEL}"}
  tool:
    image: busybox
    profiles: [tools]
volumes:
  data: {}
  unused: {}
"""


def _tree(*dirs: Path) -> list[str]:
    out = []
    for d in dirs:
        for base, subdirs, files in os.walk(d):
            out += [os.path.join(base, n) for n in subdirs + files]
    return sorted(out)


def _project(tmp_path: Path) -> Path:
    d = tmp_path / "Demo_App"
    d.mkdir()
    (d / "compose.yaml").write_text(COMPOSE)
    (d / ".env").write_text("TAG=1.36\nLEVEL=info\n")
    return d


def test_config_prints_the_normalised_model(pybuild, tmp_path):
    d = _project(tmp_path)
    proc = pybuild("compose", "--project-directory", str(d), "-f", str(d / "compose.yaml"), "config")
    assert proc.returncode == 0, proc.stderr
    doc = yaml.safe_load(proc.stdout)
    assert list(doc) == ["name", "services", "networks", "volumes"]
    assert doc["name"] == "demo_app"
    assert sorted(doc["services"]) == ["app", "web"]                 # tool is in an inactive profile
    web, app = doc["services"]["web"], doc["services"]["app"]
    assert web["image"] == "busybox:1.36"
    assert web["ports"] == [{"mode": "ingress", "target": 80, "published": "8080", "protocol": "tcp"}]
    assert web["depends_on"] == {"app": {"condition": "service_healthy", "required": True, "restart": False}}
    assert web["volumes"][1] == {"type": "bind", "source": str(d / "site"), "target": "/site", "read_only": True,
                                 "bind": {"create_host_path": True}}
    assert app["build"] == {"context": str(d / "app"), "dockerfile": "Dockerfile", "args": {"MODE": "prod"}}
    assert app["command"] == ["sh", "-c", 'echo "up"']
    assert app["healthcheck"] == {"test": ["CMD-SHELL", "true"], "interval": "1m30s", "timeout": "500ms"}
    assert app["scale"] == 2 and app["mem_limit"] == 64 << 20
    assert app["environment"] == {"LEVEL": "info"}
    assert doc["networks"] == {"default": {"name": "demo_app_default"}}
    assert doc["volumes"] == {"data": {"name": "demo_app_data"}}       # unused volumes are left out
    # what config prints loads back to the same project
    again = tmp_path / "again.yaml"
    again.write_text(proc.stdout)
    first = load_project([str(d / "compose.yaml")], environ={})
    second = load_project([str(again)], project_dir=str(d), environ={})
    assert {s.name: s for s in first.services} == {s.name: s for s in second.services}
    assert set(first.volumes) == set(second.volumes) and set(first.networks) == set(second.networks)


def test_services_volumes_quiet_and_options(pybuild, tmp_path, monkeypatch):
    d = _project(tmp_path)
    monkeypatch.chdir(d)                                             # discovery from the current directory
    assert pybuild("compose", "config", "--services").stdout == "web\napp\n"
    assert pybuild("compose", "--profile", "tools", "config", "--services").stdout == "web\napp\ntool\n"
    assert pybuild("compose", "config", "--volumes").stdout == "data\n"
    quiet = pybuild("compose", "config", "-q")
    assert (quiet.returncode, quiet.stdout) == (0, "")
    named = yaml.safe_load(pybuild("compose", "-p", "other", "config").stdout)
    assert named["name"] == "other" and named["networks"]["default"]["name"] == "other_default"
    (d / "prod.env").write_text("TAG=prod\nLEVEL=warn\n")
    over = d / "over.yaml"
    over.write_text("services:\n  web:\n    ports: !reset []\n")
    doc = yaml.safe_load(pybuild("compose", "-f", "compose.yaml", "-f", "over.yaml", "--env-file", "prod.env",
                                 "config").stdout)
    assert doc["services"]["web"]["image"] == "busybox:prod" and "ports" not in doc["services"]["web"]


def test_invalid_file_is_one_line_and_up_creates_nothing(pybuild, tmp_path, monkeypatch):
    d = _project(tmp_path)
    monkeypatch.chdir(d)
    (d / "compose.yaml").write_text(COMPOSE.replace("    ports: [\"8080:80\"]\n", "    ports: [\"8080:80\"]\n"
                                                    "    portz: [1]\n"))
    proc = pybuild("compose", "config")
    assert proc.returncode == 15
    assert proc.stderr == "pybuild: compose.yaml:5: services.web: additional property portz is not allowed\n"
    assert proc.stdout == ""
    before = _tree(pybuild.root, pybuild.state)
    up = pybuild("compose", "up", "-d")
    assert up.returncode == 15 and "additional property portz" in up.stderr and "Traceback" not in up.stderr
    assert _tree(pybuild.root, pybuild.state) == before


def test_unset_required_variable_and_missing_file(pybuild, tmp_path, monkeypatch):
    d = _project(tmp_path)
    monkeypatch.chdir(d)
    (d / ".env").write_text("TAG=1\n")
    proc = pybuild("compose", "config", env={"LEVEL": ""})
    assert proc.returncode == 15
    assert proc.stderr == ("pybuild: compose.yaml:13: services.app.environment.LEVEL: "
                           "required variable LEVEL is missing a value: set LEVEL\n")
    gone = pybuild("compose", "-f", "nope.yaml", "config")
    assert gone.returncode == 14 and "nope.yaml: no such file or directory" in gone.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    none = pybuild("compose", "config")
    assert none.returncode == 14 and "no configuration file provided" in none.stderr


def test_unset_variable_warns_on_stderr(pybuild, tmp_path, monkeypatch):
    d = tmp_path / "w"
    d.mkdir()
    (d / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n    environment: [\"X=${NOT_SET_HERE}\"]\n")
    monkeypatch.chdir(d)
    proc = pybuild("compose", "config", "--services")
    assert proc.returncode == 0 and proc.stdout == "web\n"
    assert 'The "NOT_SET_HERE" variable is not set. Defaulting to a blank string.' in proc.stderr


GOLDEN = Path(__file__).resolve().parents[2] / "testdata" / "compose" / "config"


def test_golden_config_text():
    """``testdata/compose/config/<case>/``: compose.yaml (+ compose.override.yaml, .env) and the
    reviewed ``expected.yaml`` that ``config`` prints for it (``PROJECT_DIR`` = the case directory)."""
    from compose.render import config_text

    cases = sorted(p for p in GOLDEN.iterdir() if p.is_dir())
    assert cases
    for case in cases:
        files = [str(case / "compose.yaml")]
        if (case / "compose.override.yaml").exists():
            files.append(str(case / "compose.override.yaml"))
        project = load_project(files, environ={})
        expected = (case / "expected.yaml").read_text().replace("PROJECT_DIR", str(case))
        assert config_text(project) == expected, case.name
