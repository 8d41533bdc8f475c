"""``info`` and ``version`` as Docker shapes them: the documents ``--format '{{json .}}'`` prints
(Docker's field names) and the default text, itself a template over the same document."""

from __future__ import annotations

import os
import platform
import sys

__all__ = ["info_document", "version_document", "INFO_TEXT", "VERSION_TEXT", "git_commit", "client_version"]


def client_version() -> str:
    from pybuild import __version__

    return __version__


def _arch() -> str:
    """Go's GOARCH for this machine (``amd64``, ``arm64``), as ``docker version`` says Os/Arch."""
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
            "s390x": "s390x", "riscv64": "riscv64"}.get(machine, machine)


def git_commit() -> str:
    """The commit pybuild runs from when it is a git checkout (an editable install), else ``""``.
    Read from the files of ``.git``; no git process is started."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    top = os.path.dirname(here)
    gitdir = os.path.join(top, ".git")
    try:
        if os.path.isfile(gitdir):                   # a worktree: "gitdir: <path>"
            with open(gitdir) as f:
                gitdir = os.path.join(top, f.read().split(":", 1)[1].strip())
        with open(os.path.join(gitdir, "HEAD")) as f:
            head = f.read().strip()
        if not head.startswith("ref: "):
            return head[:7]
        ref = head[5:]
        common = gitdir
        if os.path.exists(os.path.join(gitdir, "commondir")):
            with open(os.path.join(gitdir, "commondir")) as f:
                common = os.path.join(gitdir, f.read().strip())
        for base in (gitdir, common):
            try:
                with open(os.path.join(base, ref)) as f:
                    return f.read().strip()[:7]
            except FileNotFoundError:
                continue
        with open(os.path.join(common, "packed-refs")) as f:
            for line in f:
                sha, _, name = line.strip().partition(" ")
                if name == ref:
                    return sha[:7]
    except (OSError, IndexError):
        pass
    return ""


def _client() -> dict:
    return {"Platform": {"Name": "pybuild"}, "Version": client_version(), "GitCommit": git_commit(),
            "PythonVersion": platform.python_version(), "Os": sys.platform if sys.platform != "linux" else "linux",
            "Arch": _arch(), "Context": "default"}


def version_document(facts) -> dict:
    """``docker version``'s document for :class:`runner.info.HostFacts`: the client (pybuild itself)
    and, where Docker has its daemon, the runtime pybuild runs containers with."""
    from runner.info import RUNTIME_NAME

    version = client_version()
    return {
        "Client": _client(),
        "Server": {
            "Platform": {"Name": "pybuild (daemonless)"},
            "Components": [
                {"Name": "Engine", "Version": version, "Details": {"GitCommit": git_commit(), "KernelVersion":
                                                                   facts.kernel_version, "Os": "linux",
                                                                   "Arch": _arch()}},
                {"Name": RUNTIME_NAME, "Version": version, "Details": {"OCIVersion": facts.oci_version}},
            ],
            "Version": version, "GitCommit": git_commit(), "Os": facts.os_type, "Arch": _arch(),
            "KernelVersion": facts.kernel_version, "OCIVersion": facts.oci_version,
        },
    }


def info_document(facts, counts, images: int, root: str, state_dir: str, mode=None, overlay: str = "native",
                  sandbox=None, store_problem: str | None = None, network: str = "") -> dict:
    """``docker info``'s document: :class:`runner.info.HostFacts`, :class:`runner.info.ContainerCounts`,
    the number of images and where pybuild keeps its store and state; ``mode`` (a
    :class:`runner.userns.Mode`) and ``overlay`` (``runner.overlaykind.overlay_kind``) add the rootless facts;
    ``sandbox`` (:class:`runner.procsandbox.ProcessSandbox`) is what RUN steps get, ``store_problem``
    (``runner.upperfs.upper_dir_message``) a warning about where the store is; ``network`` which tool
    rootless networks use (``runner.network.rootless.describe``)."""
    from runner.info import RUNTIME_NAME

    rootless = bool(mode is not None and mode.rootless)
    warnings = [] if any(o.startswith("name=seccomp") for o in facts.security_options) else \
        ["WARNING: seccomp is not available (libseccomp.so.2 not found): containers run without a syscall filter"]
    if store_problem:
        warnings.append(f"WARNING: {store_problem}")
    return {
        "ID": "", "Containers": counts.total, "ContainersRunning": counts.running,
        "ContainersPaused": counts.paused, "ContainersStopped": counts.stopped, "Images": images,
        "Driver": "overlay", "DriverStatus": [["Backing Filesystem", "overlayfs"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Log": ["json-file"]},
        "MemoryLimit": True, "SwapLimit": False, "CpuCfsPeriod": True, "CpuCfsQuota": True, "PidsLimit": True,
        "OomKillDisable": False, "Debug": False,
        "CgroupDriver": facts.cgroup_driver, "CgroupVersion": facts.cgroup_version,
        "KernelVersion": facts.kernel_version, "OperatingSystem": facts.operating_system,
        "OSVersion": facts.os_version, "OSType": facts.os_type, "Architecture": facts.architecture,
        "NCPU": facts.ncpu, "MemTotal": facts.mem_total, "Name": facts.name, "Labels": [],
        "ServerVersion": client_version(), "DockerRootDir": root, "StateDir": state_dir,
        "Runtimes": {RUNTIME_NAME: {"path": "pybuild-shim"}}, "DefaultRuntime": RUNTIME_NAME,
        "SecurityOptions": list(facts.security_options) + (["name=rootless"] if rootless else []),
        "Warnings": warnings, "Rootless": rootless, "Overlay": overlay, "RootlessNetwork": network if rootless else "",
        "ProcessSandbox": "yes" if sandbox is None or sandbox.private else f"no ({sandbox.reason})",
        "SubUIDs": _ranges(mode.uids) if rootless else "", "SubGIDs": _ranges(mode.gids) if rootless else "",
        "ClientInfo": {**_client(), "Debug": False, "Plugins": []},
    }


def _ranges(ranges) -> str:
    return ",".join(f"{r.start}:{r.count}" for r in ranges) or "none (single-id mapping)"


VERSION_TEXT = """Client:
 Version:           {{.Client.Version}}
 Python version:    {{.Client.PythonVersion}}
 Git commit:        {{or .Client.GitCommit "unknown"}}
 OS/Arch:           {{.Client.Os}}/{{.Client.Arch}}
 Context:           {{.Client.Context}}

Server: {{.Server.Platform.Name}}
{{- range .Server.Components}}
 {{.Name}}:
  Version:          {{.Version}}
  {{- range $k, $v := .Details}}
  {{$k}}: {{$v}}
  {{- end}}
{{- end}}"""

INFO_TEXT = """Client:
 Version:    {{.ClientInfo.Version}}
 Context:    {{.ClientInfo.Context}}
 Debug Mode: false

Server:
 Containers: {{.Containers}}
  Running: {{.ContainersRunning}}
  Paused: {{.ContainersPaused}}
  Stopped: {{.ContainersStopped}}
 Images: {{.Images}}
 Server Version: {{.ServerVersion}}
 Storage Driver: {{.Driver}}
 Logging Driver: json-file
 Cgroup Driver: {{.CgroupDriver}}
 Cgroup Version: {{.CgroupVersion}}
 Runtimes:{{range $k, $v := .Runtimes}} {{$k}}{{end}}
 Default Runtime: {{.DefaultRuntime}}
 Security Options:
{{- range .SecurityOptions}}
  {{.}}
{{- end}}
 Kernel Version: {{.KernelVersion}}
 Operating System: {{.OperatingSystem}}
 OSType: {{.OSType}}
 Architecture: {{.Architecture}}
 CPUs: {{.NCPU}}
 Total Memory: {{.MemTotalText}}
 Name: {{.Name}}
 Docker Root Dir: {{.DockerRootDir}}
 State Dir: {{.StateDir}}
 Rootless: {{.Rootless}}
{{- if .Rootless}}
 Subordinate UIDs: {{.SubUIDs}}
 Subordinate GIDs: {{.SubGIDs}}
{{- end}}
 Overlay: {{.Overlay}}
 Process Sandbox (RUN steps): {{.ProcessSandbox}}
{{- if .Rootless}}
 Rootless Network: {{.RootlessNetwork}}
{{- end}}
{{- range .Warnings}}
{{.}}
{{- end}}"""
