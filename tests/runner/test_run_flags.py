"""Docker's further ``run``/``create`` flags through the real ``pybuild`` command: each one either
shows inside a real container (or in ``inspect``), or is refused with a one-line error naming it."""

from __future__ import annotations

import json
import os
import resource
import time

import pytest

IMG = "rf/busybox:1"


@pytest.fixture
def image(pybuild, busybox_tar):
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces, mounts and cgroups")
    pybuild("import", str(busybox_tar), IMG, check=True)
    yield IMG
    for cid in pybuild("ps", "-a", "-q", "--no-trunc").stdout.split():
        pybuild("rm", "-f", cid)


def run(pybuild, *args: str):
    return pybuild("run", "--rm", "--network", "none", *args)


def _lines(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_limits_storage_and_security_in_one_container(pybuild, image, tmp_path) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    soft = min(512, hard)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_text("from-host")
    v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    cg = ("echo weight=$(cat /sys/fs/cgroup/cpu.weight); echo cpuset=$(cat /sys/fs/cgroup/cpuset.cpus); "
          "echo low=$(cat /sys/fs/cgroup/memory.low); echo swap=$(cat /sys/fs/cgroup/memory.swap.max)") if v2 else (
          "echo shares=$(cat /sys/fs/cgroup/cpu/cpu.shares); echo cpuset=$(cat /sys/fs/cgroup/cpuset/cpuset.cpus); "
          "echo low=$(cat /sys/fs/cgroup/memory/memory.soft_limit_in_bytes); "
          "echo swap=$(cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes)")
    script = ("echo nofile=$(ulimit -n):$(ulimit -Hn); echo nproc=$(ulimit -u); "
              "echo groups=$(grep Groups /proc/self/status | cut -f2); "
              "echo nnp=$(grep NoNewPrivs /proc/self/status | cut -f2); "
              "echo shm=$(df -k /dev/shm | tail -1 | awk '{print $2}'); "
              "echo tmp=$(df -k /t | tail -1 | awk '{print $2}'); "
              "echo bind=$(cat /host/f); touch /host/g 2>/dev/null && echo bindrw=yes || echo bindrw=no; "
              "echo sysctl=$(cat /proc/sys/kernel/shm_rmid_forced); echo vol=$(echo v > /vol/f && cat /vol/f); " + cg)
    r = run(pybuild, "--ulimit", f"nofile={soft}:{hard}", "--ulimit", "nproc=100:200", "--group-add", "1234",
            "--security-opt", "no-new-privileges:false", "--shm-size", "8m",
            "--mount", "type=tmpfs,target=/t,tmpfs-size=1m", "--mount", "source=rfvol,target=/vol",
            "--mount", f'type=bind,"src={tmp_path / "data"}",dst=/host,readonly',
            "--sysctl", "kernel.shm_rmid_forced=1", "--memory", "64m", "--memory-reservation", "32m",
            "--memory-swap", "128m", "--cpu-shares", "512", "--cpuset-cpus", "0", image, "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    got = _lines(r.stdout)
    assert got["nofile"] == f"{soft}:{hard if hard != resource.RLIM_INFINITY else 'unlimited'}"
    assert got["nproc"] == "100"
    assert "1234" in got["groups"].split()
    assert got["nnp"] == "0"
    assert (got["shm"], got["tmp"]) == ("8192", "1024")
    assert (got["bind"], got["bindrw"]) == ("from-host", "no")
    assert got["sysctl"] == "1"
    assert got["vol"] == "v" and "rfvol" in pybuild("volume", "ls", "-q").stdout.split()
    assert got["cpuset"] == "0" and got["low"] == str(32 * 1024 * 1024)
    assert got["weight" if v2 else "shares"] == ("20" if v2 else "512")
    assert got["swap"] == str((64 if v2 else 128) * 1024 * 1024)


def test_security_opts_and_host_namespaces(pybuild, image) -> None:
    r = run(pybuild, "--security-opt", "seccomp=unconfined", "--security-opt", "label=disable",
            "--security-opt", "apparmor=unconfined", "--pid", "host", "--uts", "host", "--ipc", "host", image,
            "sh", "-c", "echo seccomp=$(grep Seccomp: /proc/self/status | cut -f2); echo pid=$$; "
                        "echo host=$(hostname); echo ipc=$(readlink /proc/self/ns/ipc)")
    assert r.returncode == 0, r.stderr
    got = _lines(r.stdout)
    assert got["seccomp"] == "0"
    assert int(got["pid"]) > 1                   # the host's pid namespace
    assert got["host"] == os.uname().nodename
    assert got["ipc"] == os.readlink("/proc/self/ns/ipc")
    r = run(pybuild, "--security-opt", "no-new-privileges", "--ipc", "private", image,
            "sh", "-c", "grep -E 'NoNewPrivs|Seccomp:' /proc/self/status | cut -f2 | tr '\\n' ' '; echo $$")
    assert r.stdout.split() == ["1", "2", "1"], r.stderr
    r = run(pybuild, "--ipc", "none", image, "sh", "-c", "grep -c ' /dev/shm ' /proc/self/mounts; "
            "test $(readlink /proc/self/ns/ipc) != " + os.readlink("/proc/self/ns/ipc") + " && echo own")
    assert r.stdout.split() == ["0", "own"], r.stderr


def test_process_flags_in_the_record(pybuild, image, tmp_path) -> None:
    labels = tmp_path / "labels"
    labels.write_text("# a comment\nfrom.file=yes\n\nbare\n")
    cidfile = tmp_path / "cid"
    r = pybuild("create", "--network", "none", "--stop-signal", "SIGUSR1", "--stop-timeout", "3",
                "--log-opt", "max-size=1m", "--log-opt", "max-file=5", "--label-file", str(labels),
                "-l", "from.flag=1", "--cidfile", str(cidfile), "--expose", "80", "--expose", "53/udp",
                "--security-opt", "label=disable", "--platform", f"linux/{_arch()}", image, "true")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert cidfile.read_text() == cid
    doc = json.loads(pybuild("inspect", cid, check=True).stdout)[0]
    assert doc["Config"]["StopSignal"] == "SIGUSR1" and doc["Config"]["StopTimeout"] == 3
    assert doc["Config"]["Labels"] == {"from.file": "yes", "bare": "", "from.flag": "1"}
    assert doc["HostConfig"]["LogConfig"]["Config"] == {"max-size": str(1024 * 1024), "max-file": "5"}
    assert "label=disable" in doc["HostConfig"]["SecurityOpt"]
    r = pybuild("create", "-P", "--expose", "8080", "--expose", "53/udp", image, "true")
    assert r.returncode == 0, r.stderr
    doc = json.loads(pybuild("inspect", r.stdout.strip(), check=True).stdout)[0]
    assert sorted(doc["HostConfig"]["PortBindings"]) == ["53/udp", "8080/tcp"]      # -P publishes --expose
    r = pybuild("create", "--network", "none", "--cidfile", str(cidfile), image, "true")
    assert r.returncode != 0 and r.stderr.startswith("pybuild: --cidfile") and r.stderr.count("\n") == 1


def _arch() -> str:
    from runner.runflags import host_platform

    return host_platform().split("/")[1]


REFUSED = [
    (["--ulimit", "nofile=1:2:3"], "--ulimit"),
    (["--ulimit", "bogus=1"], "--ulimit"),
    (["--ulimit", f"nofile={2**40}"], "--ulimit"),
    (["--sysctl", "vm.swappiness=1"], "--sysctl vm.swappiness: not a namespaced sysctl"),
    (["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"], "--sysctl net.ipv4.ip_forward"),
    (["--device", "/dev"], "--device /dev: a directory"),
    (["--device", "/etc/passwd"], "--device /etc/passwd: not a device node"),
    (["--device", "/dev/no-such-device"], "--device /dev/no-such-device"),
    (["--ip", "10.1.1.9"], "--ip: only works on a user-defined network"),
    (["--network-alias", "web"], "--network-alias"),
    (["--network", "host", "--add-host", "a:1.2.3.4"], "--add-host"),
    (["--network", "container:x", "--add-host", "gw:host-gateway"], "--add-host NAME:host-gateway: needs a bridge"),
    (["--add-host", "nocolon"], "--add-host 'nocolon': expected NAME:IP"),
    (["--network", "host", "--dns", "1.1.1.1"], "--dns"),
    (["--platform", "linux/"], "--platform linux/: invalid platform"),
    (["--mount", "type=npipe,target=/x"], "--mount"),
    (["--mount", "type=volume,target=/x"], "--mount"),
    (["--mount", "type=bind,src=/no/such/dir,dst=/x"], "--mount"),
    (["--mount", "type=bind,src=/tmp,dst=/x,bind-propagation=shared"], "--mount"),
    (["--mount", "type=volume,src=v1,dst=/x,volume-nocopy"], "--mount"),
    (["--security-opt", "apparmor"], "--security-opt"),
    (["--security-opt", "seccomp=/no/such/profile.json"], "--security-opt"),
    (["--ipc", "container:"], "--ipc container:: name the container"),
    (["--ipc", "container:x", "--shm-size", "1m"], "--shm-size: conflicts with --ipc container:x"),
    (["--ipc", "none", "--shm-size", "1m"], "--shm-size: conflicts with --ipc none"),
    (["--pid", "container:"], "--pid container:: name the container"),
    (["--pid", "bogus"], "--pid bogus"),
    (["--uts", "private"], "--uts"),
    (["--log-opt", "mode=non-blocking"], "--log-opt"),
    (["-a", "stdin"], "--attach"),
    (["-d", "-a", "stdout"], "--attach"),
    (["--memory-swap", "1g"], "--memory-swap"),
    (["--memory", "64m", "--memory-swap", "32m"], "--memory-swap"),
    (["--memory", "64m", "--memory-reservation", "128m"], "--memory-reservation"),
    (["--cpu-shares", "1"], "--cpu-shares"),
    (["--cpuset-cpus", "zero"], "--cpuset-cpus"),
    (["--stop-signal", "SIGNOPE"], "--stop-signal"),
    (["--stop-timeout", "-1"], "--stop-timeout -1"),
    (["--expose", "http"], "--expose"),
    (["--label-file", "/no/such/labels"], "--label-file"),
]


@pytest.mark.parametrize(("args", "message"), REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_refused_with_a_one_line_error_naming_the_flag(pybuild, args, message) -> None:
    r = pybuild("create", *args, "no-such-image-needed", "true")
    assert r.returncode != 0
    assert r.stderr.startswith(f"pybuild: {message}"), r.stderr
    assert r.stderr.count("\n") == 1, r.stderr


def test_device_node_and_its_cgroup_access(pybuild, image) -> None:
    # a device outside the default allow-list, which opens without a capability
    dev = next(d for d in ("/dev/fuse", "/dev/loop-control") if os.path.exists(d))
    r = run(pybuild, "--device", f"{dev}:/dev/sub/mydev:r", image, "sh", "-c",
            "stat -c '%t:%T %a' /dev/sub/mydev; (exec 3</dev/sub/mydev) && echo R; "
            "(exec 3<>/dev/sub/mydev) 2>/dev/null && echo RW; true")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    st = os.stat(dev)
    assert lines[:3] == [f"{os.major(st.st_rdev):x}:{os.minor(st.st_rdev):x}", f"{st.st_mode & 0o777:o}", "R"]
    if not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):      # v1: the device cgroup enforces "r"
        assert "RW" not in lines
    r = run(pybuild, "--device", dev, image, "sh", "-c", f"(exec 3<>{dev}) && echo RW")
    assert r.stdout.split() == ["RW"], r.stderr
    assert run(pybuild, image, "test", "-e", dev).returncode == 1     # only with --device


def test_attach_naming_the_default_streams_is_accepted(pybuild, image) -> None:
    r = run(pybuild, "-a", "STDOUT", "-a", "stderr", image, "echo", "hi")
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr


def test_pid_container_joins_the_other_containers_pid_namespace(pybuild, image) -> None:
    """``--pid container:X``: X's processes are visible (its PID 1 is X's), joined again at each start;
    X not running is a one-line error, as Docker's."""
    pybuild("run", "-d", "--name", "pidtgt", "--network", "none", image, "sleep", "300", check=True)
    r = run(pybuild, "--pid", "container:pidtgt", image, "cat", "/proc/1/cmdline")
    assert (r.returncode, r.stdout) == (0, "sleep\x00300\x00"), r.stderr
    pybuild("create", "--name", "joiner", "--network", "none", "--pid", "container:pidtgt", image,
            "sh", "-c", "ps -o comm | grep -c sleep", check=True)
    tid = pybuild("inspect", "--format", "{{.Id}}", "pidtgt", check=True).stdout.strip()
    assert pybuild("inspect", "--format", "{{.HostConfig.PidMode}}", "joiner", check=True).stdout.strip() == \
        f"container:{tid}"
    assert pybuild("start", "-a", "joiner").stdout.strip() == "1"
    pybuild("stop", "-t", "0", "pidtgt", check=True)
    r = pybuild("start", "-a", "joiner")
    assert r.returncode != 0 and r.stderr.strip() == \
        "pybuild: --pid container:pidtgt: that container is not running"
    pybuild("start", "pidtgt", check=True)
    assert pybuild("start", "-a", "joiner").stdout.strip() == "1"


def test_ipc_container_shares_a_shareable_containers_ipc_and_dev_shm(pybuild, image) -> None:
    """``--ipc shareable`` keeps /dev/shm joinable; ``--ipc container:X`` joins X's IPC namespace and
    /dev/shm; a private X is refused, as Docker refuses it."""
    pybuild("run", "-d", "--name", "donor", "--network", "none", "--ipc", "shareable", image,
            "sh", "-c", "echo from-donor > /dev/shm/x; sleep 300", check=True)
    assert pybuild("inspect", "--format", "{{.HostConfig.IpcMode}}", "donor", check=True).stdout.strip() == "shareable"
    donor_ns = pybuild("exec", "donor", "readlink", "/proc/1/ns/ipc", check=True).stdout
    r = run(pybuild, "--ipc", "container:donor", image,
            "sh", "-c", "readlink /proc/self/ns/ipc; cat /dev/shm/x; echo from-joiner > /dev/shm/y")
    assert r.returncode == 0 and r.stdout == donor_ns + "from-donor\n", r.stderr
    assert pybuild("exec", "donor", "cat", "/dev/shm/y", check=True).stdout == "from-joiner\n"
    pybuild("run", "-d", "--name", "private", "--network", "none", image, "sleep", "300", check=True)
    r = run(pybuild, "--ipc", "container:private", image, "true")
    assert r.returncode == 125 and "not shareable" in r.stderr and len(r.stderr.splitlines()) == 1
    # a stopped shareable container (its shim's resident loop releases it) keeps no /dev/shm mount
    pybuild("stop", "-t", "1", "donor", check=True)

    def shm_mounts() -> list[str]:
        with open("/proc/self/mounts") as f:
            return [m for m in f.read().split("\n") if str(pybuild.root) in m and m.split(" ")[1].endswith("/shm")]

    deadline = time.monotonic() + 10       # the release follows the exit record `stop` waits for
    while shm_mounts() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not shm_mounts()
