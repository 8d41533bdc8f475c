"""``pybuild kube build-job``: the printed manifest checked against the Kubernetes API's own types, the
flags as fields, one-line errors, and the Job's container command run for real as the pod would run it.

The API check uses the ``kubernetes`` client's models (a test dependency): strict pydantic types
generated from the API's OpenAPI schema, with unknown fields refused, required fields required and
no type coercion. A dump of the validated object must give back the document itself, so a field
spelled in snake case (accepted as an alias by the client, refused by the API server) fails too.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import PybuildRunner, pybuild_exe

IMAGE = "registry.example.com/tools/pybuild:0.1.0"
GIT = "https://git.example.com/team/app.git#v1.2:services/api"


def validate_job(doc: dict) -> None:
    """Raise unless ``doc`` is a batch/v1 Job the API's schema accepts, exactly as written."""
    from kubernetes.client import V1Job

    assert doc.get("apiVersion") == "batch/v1" and doc.get("kind") == "Job"
    job = V1Job.model_validate(doc)
    dumped = job.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert dumped == doc, "fields the schema does not know by these names"
    # what the API server checks beyond the schema, for the fields we emit: names are DNS labels,
    # volume names unique, every mount names a volume, quantities parse
    from kubernetes.utils import parse_quantity

    pod = doc["spec"]["template"]["spec"]
    volumes = [v["name"] for v in pod.get("volumes", [])]
    assert len(set(volumes)) == len(volumes)
    for c in pod["containers"]:
        assert all(m["name"] in volumes for m in c.get("volumeMounts", []))
        for side in c.get("resources", {}).values():
            for value in side.values():
                parse_quantity(value)
    label = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
    for name in [doc["metadata"]["name"], *volumes, *(c["name"] for c in pod["containers"])]:
        assert re.fullmatch(label, name) and len(name) <= 63, name


def _job(pb, *args: str) -> dict:
    proc = pb("kube", "build-job", *args, check=True)
    docs = list(yaml.safe_load_all(proc.stdout))
    assert len(docs) == 1
    return docs[0]


def _container(doc: dict) -> dict:
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    return container


def test_validator_refuses_what_the_api_refuses() -> None:
    """The check above is not a formality: each of these breaks it."""
    from pydantic import ValidationError

    good = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}}
    validate_job(good)
    pod = ("spec", "template", "spec")

    def broken(path, key, value):
        doc = json.loads(json.dumps(good))
        node = doc
        for part in path:
            node = node[part]
        if value is None:
            del node[key]
        else:
            node[key] = value
        return doc

    cases = [broken(pod, "hostUser", False),                                   # unknown field
             broken(pod, "securityContext", {"runAsUser": "1000"}),            # a string for an integer
             broken(pod, "containers", [{"image": "i"}]),                      # a container needs its name
             broken(pod, "host_users", False),                                 # the client's alias, not the API's
             broken(("spec",), "backoffLimit", True)]                          # a bool for an integer
    for doc in cases:
        with pytest.raises((ValidationError, AssertionError)):
            validate_job(doc)


@pytest.mark.parametrize("args", [
    ("-t", "registry.example.com/team/app:1", "--context", "-"),
    ("-t", "registry.example.com/team/app:1", "-t", "registry.example.com/team/app:latest", "--context", GIT,
     "-f", "build/Dockerfile", "--secret", "regcred", "--cpu", "500m", "--memory", "2Gi", "--store-size", "20Gi",
     "--insecure-registry", "registry.build.svc:5000", "--no-host-users", "--proc-unmasked", "--name", "api-build"),
    ("-t", "localhost:5000/x", "--context", "-", "--cpu-request", "0.25", "--cpu-limit", "2", "--memory-limit", "1e9",
     "--no-host-users"),
], ids=["minimal", "everything", "partial-resources"])
def test_manifest_is_a_valid_job(pybuild, args) -> None:
    validate_job(_job(pybuild, "--image", IMAGE, *args))


def test_stdin_context_flags_to_fields(pybuild) -> None:
    doc = _job(pybuild, "-t", "registry.example.com/team/my_app:1", "--context", "-", "--image", IMAGE)
    assert doc["metadata"] == {"name": "pybuild-my-app", "labels": {"app.kubernetes.io/managed-by": "pybuild"}}
    spec = doc["spec"]
    assert spec["backoffLimit"] == 0
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                                      "seccompProfile": {"type": "Unconfined"}}
    assert "hostUsers" not in pod
    assert pod["volumes"] == [{"name": "work", "emptyDir": {}}]
    c = _container(doc)
    assert c["image"] == IMAGE and c["command"] == ["pybuild"]
    assert c["args"] == ["build", "--push", "--progress", "plain", "-t", "registry.example.com/team/my_app:1", "-"]
    assert c["stdin"] is True and c["stdinOnce"] is True and "tty" not in c
    assert c["volumeMounts"] == [{"name": "work", "mountPath": "/pybuild"}]
    assert {e["name"]: e["value"] for e in c["env"]} == {
        "PYBUILD_ROOT": "/pybuild/root", "PYBUILD_STATE": "/pybuild/state", "TMPDIR": "/pybuild"}
    assert "securityContext" not in c and "resources" not in c


def test_git_context_and_every_option_to_fields(pybuild) -> None:
    doc = _job(pybuild, "-t", "registry.example.com/team/api:1", "-t", "registry.example.com/team/api:latest",
               "--context", GIT, "--image", IMAGE, "-f", "build/Dockerfile", "--secret", "regcred",
               "--cpu", "500m", "--memory-request", "1Gi", "--memory-limit", "4Gi", "--store-size", "20Gi",
               "--insecure-registry", "registry.build.svc:5000", "--no-host-users", "--proc-unmasked")
    pod = doc["spec"]["template"]["spec"]
    c = _container(doc)
    assert c["args"] == ["build", "--push", "--progress", "plain", "-t", "registry.example.com/team/api:1",
                         "-t", "registry.example.com/team/api:latest", "-f", "build/Dockerfile", GIT]
    assert "stdin" not in c and "stdinOnce" not in c
    # the Secret's .dockerconfigjson is config.json in the directory DOCKER_CONFIG names
    assert pod["volumes"] == [
        {"name": "work", "emptyDir": {"sizeLimit": "20Gi"}},
        {"name": "registry-auth", "secret": {"secretName": "regcred",
                                             "items": [{"key": ".dockerconfigjson", "path": "config.json"}]}}]
    assert {"name": "registry-auth", "mountPath": "/etc/pybuild/registry-auth", "readOnly": True} in c["volumeMounts"]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["DOCKER_CONFIG"] == "/etc/pybuild/registry-auth"
    assert env["PYBUILD_INSECURE_REGISTRIES"] == "registry.build.svc:5000"
    assert c["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "500m", "memory": "4Gi"}}
    assert pod["hostUsers"] is False and c["securityContext"] == {"procMount": "Unmasked"}
    assert doc["metadata"]["name"] == "pybuild-api"


def test_image_from_the_environment(pybuild) -> None:
    proc = pybuild("kube", "build-job", "-t", "r.example.com/a:1", "--context", "-",
                   env={"PYBUILD_KUBE_IMAGE": "r.example.com/pybuild:2"}, check=True)
    assert _container(yaml.safe_load(proc.stdout))["image"] == "r.example.com/pybuild:2"


@pytest.mark.parametrize("args, message", [
    (("-t", "Bad//Name", "--context", "-"), "pybuild: -t: invalid"),
    (("-t", "r.example.com/a@sha256:" + "0" * 64, "--context", "-"), "pybuild: -t: 'r.example.com/a@sha256:"),
    (("--context", "-"), "pybuild: -t: name at least one destination"),
    (("-t", "r.example.com/a", "--context", "."), "pybuild: --context: '.': expected '-' (a tar on stdin) or a git URL"),
    (("-t", "r.example.com/a", "--context", "https://h/app"), "pybuild: --context: 'https://h/app': expected"),
    (("-t", "r.example.com/a", "--context", "https://h/app.git#a..b"), "pybuild: --context: 'https://h/app.git#a..b': 'a..b' is not a valid git ref"),
    (("-t", "r.example.com/a", "--context", "-", "--cpu", "2 cores"), "pybuild: --cpu: '2 cores' is not a Kubernetes quantity"),
    (("-t", "r.example.com/a", "--context", "-", "--memory", "4GB"), "pybuild: --memory: '4GB' is not a Kubernetes quantity"),
    (("-t", "r.example.com/a", "--context", "-", "--memory-limit", "-1Gi"), "pybuild: --memory-limit: '-1Gi' is not"),
    (("-t", "r.example.com/a", "--context", "-", "--cpu", "0"), "pybuild: --cpu: '0' must be more than zero"),
    (("-t", "r.example.com/a", "--context", "-", "--memory-request", "2Gi", "--memory-limit", "1Gi"),
     "pybuild: --memory-request: 2Gi is more than the limit 1Gi"),
    (("-t", "r.example.com/a", "--context", "-", "--store-size", "lots"), "pybuild: --store-size: 'lots' is not"),
    (("-t", "r.example.com/a", "--context", "-", "--secret", "Reg_Cred"), "pybuild: --secret: 'Reg_Cred' is not a Secret name"),
    (("-t", "r.example.com/a", "--context", "-", "--name", "-x"), "pybuild: --name: '-x' is not a Job name"),
    (("-t", "r.example.com/a", "--context", "-", "--proc-unmasked"), "pybuild: --proc-unmasked needs --no-host-users"),
    (("-t", "r.example.com/a", "--context", "-", "--insecure-registry", "http://r"), "pybuild: --insecure-registry: 'http://r'"),
    (("-t", "r.example.com/a", "--context", "-", "-f", "-"), "pybuild: --file: name a Dockerfile inside the context"),
])
def test_bad_input_is_one_line(pybuild, args, message: str) -> None:
    proc = pybuild("kube", "build-job", "--image", IMAGE, *args, env={"PYBUILD_KUBE_IMAGE": ""})
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(message) and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_no_image_is_refused(pybuild) -> None:
    proc = pybuild("kube", "build-job", "-t", "r.example.com/a", "--context", "-", env={"PYBUILD_KUBE_IMAGE": ""})
    assert proc.returncode == 2 and proc.stderr.startswith("pybuild: --image: name the pybuild image")


def test_quantities_parse_as_kubernetes_reads_them() -> None:
    from decimal import Decimal

    from builder.kubejob import parse_quantity

    assert parse_quantity("500m") == Decimal("0.5") and parse_quantity("1.5Gi") == 1610612736
    assert parse_quantity("2") == 2 and parse_quantity("1e3") == 1000 and parse_quantity("128974848") == 128974848
    assert parse_quantity(".5") == Decimal("0.5") and parse_quantity("4k") == 4000
    for bad in ("", "1.5 Gi", "1gb", "Gi", "-1", "+1", "1Kb", "0x10", "1e"):
        with pytest.raises(ValueError):
            parse_quantity(bad)
    # the same values as the Kubernetes client's own parser
    from kubernetes.utils import parse_quantity as kube_parse

    for text in ("500m", "1.5Gi", "1e3", "1E2", ".5", "4k", "2", "100u", "3n", "7Ti", "1.25M", "64Ki", "0.1"):
        assert parse_quantity(text) == kube_parse(text), text


# -- the Job's container, run for real ------------------------------------------------------------------

@pytest.fixture
def basic_registry(tmp_path: Path):
    from tests.registry.servers import REGISTRY_BIN, start_registry

    if REGISTRY_BIN is None:
        pytest.skip("docker-registry is not installed")
    server = start_registry("basic", tmp_path / "registry")
    try:
        yield server
    finally:
        server.stop()


def _as_kubelet_would(doc: dict, tmp_path: Path, secret: dict[str, bytes]) -> tuple[list[str], dict[str, str]]:
    """The container's command line and environment, its volumes laid out under ``tmp_path`` as the
    kubelet lays them out: an empty directory for the emptyDir, the Secret's keys as the files its
    ``items`` name. (A stand-in for a cluster, which cannot exist here: the pod's user namespace and
    security context are the unprivileged-container tests' business.)"""
    pod = doc["spec"]["template"]["spec"]
    c = _container(doc)
    where: dict[str, str] = {}
    for volume in pod["volumes"]:
        host = tmp_path / "volumes" / volume["name"]
        host.mkdir(parents=True)
        if "secret" in volume:
            for item in volume["secret"]["items"]:
                (host / item["path"]).write_bytes(secret[item["key"]])
        mount = next(m["mountPath"] for m in c["volumeMounts"] if m["name"] == volume["name"])
        where[mount] = str(host)

    def remap(value: str) -> str:
        for mount, host in sorted(where.items(), key=lambda kv: -len(kv[0])):
            if value == mount or value.startswith(mount + "/"):
                return host + value[len(mount):]
        return value

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYBUILD_", "DOCKER_"))}
    env.update({e["name"]: remap(e["value"]) for e in c["env"]})
    assert c["command"] == ["pybuild"]
    return [pybuild_exe(), *c["args"]], env


def test_the_jobs_container_builds_a_stdin_context_and_pushes_with_the_secret(bpybuild, basic_registry,
                                                                              tmp_path: Path) -> None:
    from tests.registry.servers import BASIC_PASSWORD, BASIC_USER

    host = basic_registry.host
    auth = base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
    dockerconfigjson = json.dumps({"auths": {host: {"auth": auth}}}).encode()
    login_dir = tmp_path / "login"
    login_dir.mkdir()
    (login_dir / "config.json").write_bytes(dockerconfigjson)
    creds = {"DOCKER_CONFIG": str(login_dir), "PYBUILD_INSECURE_REGISTRIES": host, "PYBUILD_CONFIG": str(tmp_path)}
    bpybuild("push", "busybox:latest", f"{host}/base/busybox:1", env=creds, check=True)

    doc = _job(bpybuild, "-t", f"{host}/team/app:1", "--context", "-", "--image", IMAGE, "--secret", "regcred",
               "--insecure-registry", host)
    validate_job(doc)
    argv, env = _as_kubelet_would(doc, tmp_path, {".dockerconfigjson": dockerconfigjson})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("Dockerfile", f"FROM {host}/base/busybox:1\nCOPY msg /msg\nRUN cat /msg\n".encode()),
                           ("msg", b"built by the Job\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    proc = subprocess.run(argv, input=buf.getvalue(), capture_output=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"Pushed sha256:" in proc.stderr
    work = tmp_path / "volumes" / "work"
    assert (work / "root" / "blobs").is_dir()   # the store lives on the emptyDir

    # without the Secret the registry refuses the push
    argv2, env2 = _as_kubelet_would(_job(bpybuild, "-t", f"{host}/team/app:2", "--context", "-", "--image", IMAGE,
                                         "--insecure-registry", host), tmp_path / "nosecret", {})
    env2["PYBUILD_CONFIG"] = str(tmp_path / "nosecret")
    denied = subprocess.run(argv2, input=buf.getvalue(), capture_output=True, env=env2, timeout=300)
    assert denied.returncode != 0 and b"Pushed" not in denied.stderr

    # another store pulls what the Job pushed and runs it
    root, state = tmp_path / "r2", tmp_path / "s2"
    root.mkdir(mode=0o700)
    state.mkdir(mode=0o700)
    other = PybuildRunner(root, state)
    other("pull", f"{host}/team/app:1", env=creds, check=True)
    out = other("run", "--rm", "--network", "none", f"{host}/team/app:1", "cat", "/msg", env=creds, check=True)
    assert out.stdout == "built by the Job\n"
