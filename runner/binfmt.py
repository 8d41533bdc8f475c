"""Can this machine run a program built for another platform? The one adapter over the kernel's
``binfmt_misc`` (``/proc/sys/fs/binfmt_misc``), which hands a foreign ELF to a QEMU user-mode
emulator (Debian's ``qemu-user-static``).

Contract: :func:`require` returns when ``platform`` runs here, natively or through an enabled
handler registered with the ``F`` (fix-binary) flag, and raises :class:`EmulationUnavailable` with
the one command that makes it work otherwise. The ``F`` flag matters to containers: the kernel opens
the interpreter when the handler is registered, so it works inside a container's mount namespace
where ``/usr/libexec/qemu-binfmt/...`` does not exist. Nothing here writes to ``binfmt_misc``:
registering a handler is the administrator's call, so pybuild only reads and says what to run.
"""

from __future__ import annotations

import os
import platform as _platform

from layers.value import frozen

from .errors import EmulationUnavailable

__all__ = ["BINFMT_DIR", "Handler", "handler", "native", "require", "host_platform", "QEMU_NAMES"]

BINFMT_DIR = "/proc/sys/fs/binfmt_misc"

# OCI architecture -> the QEMU user-mode target name (the handler is ``qemu-<name>``)
QEMU_NAMES = {"amd64": "x86_64", "arm64": "aarch64", "arm": "arm", "386": "i386", "ppc64le": "ppc64le",
              "s390x": "s390x", "riscv64": "riscv64", "mips64le": "mips64el", "mips64": "mips64",
              "loong64": "loongarch64"}
_MACHINE_TO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm", "i686": "386",
                    "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
# what a host runs without emulation besides its own architecture
_ALSO_NATIVE = {"amd64": ("386",), "arm64": ("arm",)}


@frozen
class Handler:
    """One ``binfmt_misc`` entry: its name, whether it is enabled, its interpreter and flags."""

    name: str
    enabled: bool
    interpreter: str
    flags: str


def host_platform() -> tuple[str, str]:
    """``(os, architecture)`` of this machine in OCI terms."""
    machine = _platform.machine()
    return "linux", _MACHINE_TO_ARCH.get(machine, machine)


def native(os_name: str, architecture: str) -> bool:
    """True when this machine runs ``os_name/architecture`` programs without emulation."""
    host_os, host_arch = host_platform()
    return os_name == host_os and (architecture == host_arch or architecture in _ALSO_NATIVE.get(host_arch, ()))


def handler(architecture: str, directory: str = BINFMT_DIR) -> Handler | None:
    """The registered ``qemu-<name>`` handler for ``architecture``, or None (none, or not mounted)."""
    name = "qemu-" + QEMU_NAMES.get(architecture, architecture)
    try:
        with open(os.path.join(directory, name)) as f:
            text = f.read()
    except OSError:
        return None
    fields: dict[str, str] = {}
    enabled = False
    for line in text.splitlines():
        if line.strip() == "enabled":
            enabled = True
        key, _, value = line.partition(" ")
        fields.setdefault(key, value.strip())
    return Handler(name, enabled, fields.get("interpreter", ""), fields.get("flags:", ""))


def require(os_name: str, architecture: str, variant: str = "", directory: str = BINFMT_DIR) -> None:
    """Return when ``os/architecture`` runs here; else :class:`EmulationUnavailable` naming the command."""
    if native(os_name, architecture):
        return
    want = "/".join(p for p in (os_name, architecture, variant) if p)
    host = "/".join(host_platform())
    if os_name != "linux":
        raise EmulationUnavailable(f"{want} cannot run on this {host} machine (only linux programs can be emulated)")
    qemu = QEMU_NAMES.get(architecture, architecture)
    found = handler(architecture, directory)
    if not os.path.exists(os.path.join(directory, "status")):
        fix = ("mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && "
               f"update-binfmts --enable qemu-{qemu}")
        raise EmulationUnavailable(f"{want} needs QEMU emulation on this {host} machine, but binfmt_misc is not "
                                   f"mounted; run: {fix}")
    if found is None:
        fix = (f"update-binfmts --enable qemu-{qemu}" if os.path.exists(f"/usr/bin/qemu-{qemu}-static")
               else "apt-get install qemu-user-static binfmt-support")
        raise EmulationUnavailable(f"{want} needs QEMU emulation on this {host} machine and no binfmt_misc handler "
                                   f"is registered for {qemu}; run: {fix}")
    if not found.enabled:
        raise EmulationUnavailable(f"{want}: the binfmt_misc handler {found.name} is disabled; "
                                   f"run: update-binfmts --enable {found.name}")
    if "F" not in found.flags:
        raise EmulationUnavailable(f"{want}: the binfmt_misc handler {found.name} lacks the F (fix-binary) flag, so "
                                   f"its interpreter {found.interpreter} cannot be found inside a container; run: "
                                   f"apt-get install --reinstall qemu-user-static")
