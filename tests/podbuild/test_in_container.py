"""``pybuild build --push`` inside an unprivileged container, as a Kubernetes pod runs it (issue 14).

The pybuild image (the repository's ``Dockerfile``, built by pybuild: see conftest) runs under rootful
podman as ``--user 1000:1000`` with Docker's default capabilities (no CAP_SYS_ADMIN), runc's masked
``/proc``, seccomp unconfined and the host's network; the build context and the store are volumes.
Inside, pybuild makes its user namespace (newuidmap with the image's subordinate ranges), finds it cannot
mount a fresh ``/proc`` and says once that RUN steps run without a process sandbox, builds a Dockerfile
with RUN steps (apt-get from Debian's mirror, a user of the image's own, a chown) and pushes it to the
registry on the host's loopback. The image then runs on the host with pybuild (as root) and with podman.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import PybuildRunner, pybuild_exe

from .conftest import POD, STORE, UNPRIVILEGED, Podman, PybuildImage

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

# Debian's packages from its mirror (apt drops to its _apt user: a subordinate id), a user of the
# image's own, and the PID the step sees
DOCKERFILE = """\
FROM {base}
RUN apt-get update && apt-get install -y --no-install-recommends hello && rm -rf /var/lib/apt/lists/*
RUN useradd --uid 1234 --create-home app && echo kept > /home/app/file && chown app:app /home/app/file
RUN echo "step pid $$"
USER app
CMD ["hello"]
"""


# a pod with a user namespace of its own (hostUsers: false), as podman makes one: 65536 ids from here
POD_USERNS = 2_000_000_000
USERNS = ("--uidmap", f"0:{POD_USERNS}:65536", "--gidmap", f"0:{POD_USERNS}:65536")


def _context(tmp_path: Path, base: str, dockerfile: str = DOCKERFILE) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile.format(base=base))
    os.chmod(ctx, 0o755)
    os.chmod(ctx / "Dockerfile", 0o644)
    return ctx


def _store(tmp_path: Path, owner: int = 1000) -> Path:
    store = tmp_path / "store"
    store.mkdir()
    os.chown(store, owner, owner)  # the container's user, as the host sees it
    return store


def _runs_on_the_host(ref: str, image: PybuildImage, podman: Podman, tmp_path: Path) -> None:
    """``ref`` (the DOCKERFILE's image) runs with pybuild as root (a fresh store pulls it) and podman."""
    host = PybuildRunner(tmp_path / "host-root", tmp_path / "host-state")
    host.root.mkdir(mode=0o700)
    host.state.mkdir(mode=0o700)
    env = {"PYBUILD_INSECURE_REGISTRIES": image.registry}
    assert host("run", "--rm", ref, env=env, check=True).stdout == "Hello, world!\n"
    owners = host("run", "--rm", ref, "stat", "-c", "%u:%g %n", "/home/app", "/home/app/file", env=env,
                  check=True).stdout
    # the ids as the RUN steps set them, not the host sub-ids they had in the container's store
    assert owners == "1234:1234 /home/app\n1234:1234 /home/app/file\n"
    ran = podman("run", "--rm", "--tls-verify=false", "--network", "none", "--ulimit", "nofile=1024:1024",
                 "--ulimit", "nproc=4096:4096", ref)
    assert ran.returncode == 0 and ran.stdout == "Hello, world!\n", ran.stderr


def test_build_and_push_inside_an_unprivileged_container(pybuild_image: PybuildImage, podman: Podman,
                                                         tmp_path: Path) -> None:
    ctx, store = _context(tmp_path, pybuild_image.base_ref), _store(tmp_path)
    out_ref = f"{pybuild_image.registry}/inpod/app:1"
    r = podman("run", "--rm", *UNPRIVILEGED, "-v", f"{ctx}:/ctx:ro", "-v", f"{store}:{STORE}", pybuild_image.ref,
               "build", "--progress", "plain", "--push", "-t", out_ref, "/ctx")
    assert r.returncode == 0, r.stdout + r.stderr
    # the masked /proc was found, and said once for the three RUN steps
    assert r.stderr.count("no process sandbox") == 1, r.stderr
    assert "a fresh /proc cannot be mounted: mount proc: Operation not permitted" in r.stderr
    pid = re.search(r"^step pid (\d+)$", r.stderr, re.M)
    assert pid and int(pid.group(1)) > 1, r.stderr  # the container's PID namespace, not one of its own
    assert "Pushed sha256:" in r.stdout + r.stderr
    assert (store / "blobs").is_dir()  # the store is on the volume
    _runs_on_the_host(out_ref, pybuild_image, podman, tmp_path)


def test_build_in_a_pod_with_its_own_user_namespace(pybuild_image: PybuildImage, podman: Podman,
                                                    tmp_path: Path) -> None:
    """``hostUsers: false``: the container already runs in a user namespace (uid 1000 there, no
    capabilities); pybuild still makes its own inside it (the image's ranges fit in 65536 ids)."""
    ctx, store = _context(tmp_path, pybuild_image.base_ref), _store(tmp_path, POD_USERNS + 1000)
    out_ref = f"{pybuild_image.registry}/inpod/userns:1"
    r = podman("run", "--rm", *USERNS, *UNPRIVILEGED, "-v", f"{ctx}:/ctx:ro", "-v", f"{store}:{STORE}",
               pybuild_image.ref, "build", "--progress", "plain", "--push", "-t", out_ref, "/ctx")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr.count("no process sandbox") == 1, r.stderr
    _runs_on_the_host(out_ref, pybuild_image, podman, tmp_path)


@pytest.mark.parametrize("userns", [False, True], ids=["host-users", "own-userns"])
def test_unmasked_proc_gives_run_steps_their_own_pid_namespace(pybuild_image: PybuildImage, podman: Podman,
                                                               tmp_path: Path, userns: bool) -> None:
    """``procMount: Unmasked`` (podman's ``unmask=ALL``; Kubernetes wants ``hostUsers: false`` with it): a
    fresh /proc mounts, so the probe keeps the process sandbox and says nothing."""
    ctx = _context(tmp_path, pybuild_image.base_ref, 'FROM {base}\nRUN echo "step pid $$"\n')
    store = _store(tmp_path, POD_USERNS + 1000 if userns else 1000)
    r = podman("run", "--rm", *(USERNS if userns else ()), "--security-opt", "unmask=ALL", *UNPRIVILEGED,
               "-v", f"{ctx}:/ctx:ro", "-v", f"{store}:{STORE}", pybuild_image.ref, "build", "--progress", "plain",
               "/ctx")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no process sandbox" not in r.stderr
    assert re.search(r"^step pid 1$", r.stderr, re.M), r.stderr


def test_diagnostics_inside_an_unprivileged_container(pybuild_image: PybuildImage, podman: Podman,
                                                      tmp_path: Path) -> None:
    ctx, store = _context(tmp_path, pybuild_image.base_ref), _store(tmp_path)
    # a store on the container's own (overlay) root: refused with the fix, before any work
    r = podman("run", "--rm", *UNPRIVILEGED, "-v", f"{ctx}:/ctx:ro", pybuild_image.ref,
               "--root", "/home/pybuild/store", "build", "/ctx")
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "the store /home/pybuild/store is on an overlay filesystem" in lines[0]
    assert "put the store on a volume" in lines[0]
    # info says both (on the container's root: a warning)
    r = podman("run", "--rm", *UNPRIVILEGED, pybuild_image.ref, "--root", "/home/pybuild/store", "info")
    assert r.returncode == 0, r.stderr
    assert "WARNING: the store /home/pybuild/store is on an overlay filesystem" in r.stdout
    assert ("Process Sandbox (RUN steps): no (a fresh /proc cannot be mounted: mount proc: Operation not "
            "permitted)") in r.stdout
    # a process sandbox asked for where none can be: refused, saying why
    r = podman("run", "--rm", *UNPRIVILEGED, "-e", "PYBUILD_PROCESS_SANDBOX=on", "-v", f"{ctx}:/ctx:ro",
               "-v", f"{store}:{STORE}", pybuild_image.ref, "build", "/ctx")
    assert r.returncode != 0
    assert "a process sandbox was asked for, but a fresh /proc cannot be mounted here" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    # run needs a /proc of its own: refused, saying why
    r = podman("run", "--rm", *UNPRIVILEGED, "-v", f"{store}:{STORE}", pybuild_image.ref,
               "run", "--rm", "--network", "none", pybuild_image.base_ref, "true")
    assert r.returncode != 0
    assert "mount proc on /proc: Operation not permitted (refused where the outer /proc is masked" in r.stderr, r.stderr


def _pod_as_podman_args(job: dict, volumes_dir: Path) -> list[str]:
    """``podman run`` arguments for the one container of a Job's pod, as a kubelet would set it up:
    the pod's user and seccomp profile, ``emptyDir`` volumes (world-writable dirs, as the kubelet
    makes them), the container's env, stdin, command and args. Fails on a field it does not map."""
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    sec = pod["securityContext"]
    assert sec["seccompProfile"] == {"type": "Unconfined"} and sec["runAsNonRoot"] is True
    assert "securityContext" not in container  # no capabilities, no privilege asked for
    args = ["run", "--rm", "--user", f"{sec['runAsUser']}:{sec['runAsGroup']}", *POD]
    paths = {}
    for vol in pod["volumes"]:
        assert set(vol) == {"name", "emptyDir"}, vol
        paths[vol["name"]] = volumes_dir / vol["name"]
        paths[vol["name"]].mkdir(parents=True)
        os.chmod(paths[vol["name"]], 0o777)
    for mount in container["volumeMounts"]:
        args += ["-v", f"{paths[mount['name']]}:{mount['mountPath']}"]
    for env in container["env"]:
        args += ["-e", f"{env['name']}={env['value']}"]
    if container.get("stdin"):
        args.append("-i")
    (command,) = container["command"]
    return [*args, "--entrypoint", command, container["image"], *container["args"]]


def test_kube_build_jobs_pod_runs_the_image(pybuild_image: PybuildImage, podman: Podman, tmp_path: Path) -> None:
    """``pybuild kube build-job --context -``'s pod, run by podman as a kubelet would: the image builds the
    context streamed on stdin in the emptyDir's store and pushes."""
    import yaml

    out_ref = f"{pybuild_image.registry}/kube/app:1"
    rendered = subprocess.run([pybuild_exe(), "kube", "build-job", "-t", out_ref, "--context", "-",
                               "--image", pybuild_image.ref, "--insecure-registry", pybuild_image.registry],
                              capture_output=True, text=True, check=True)
    argv = _pod_as_podman_args(yaml.safe_load(rendered.stdout), tmp_path / "volumes")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = DOCKERFILE.format(base=pybuild_image.base_ref).encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    r = podman(*argv, input=buf.getvalue())
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr.count("no process sandbox") == 1, r.stderr
    assert (tmp_path / "volumes" / "work" / "root" / "blobs").is_dir()  # the store is on the emptyDir
    _runs_on_the_host(out_ref, pybuild_image, podman, tmp_path)
