"""The OCI runtime spec (``config.json``) as frozen values: the part of runtime-spec 1.0 pybuild makes and runs.

Every type has ``to_dict()`` (a JSON-ready dict with the spec's camelCase field names; optional fields
left unset are omitted) and ``from_dict(value, path)`` (validates types and names the field path in the
:class:`InvalidSpec` it raises, e.g. ``linux.seccomp.syscalls[3].args[0].op``). For every value ``s``,
``Spec.from_dict(s.to_dict()) == s``.

Unknown fields are refused, not dropped: a foreign ``config.json`` with a field this runtime does not
model (``linux.uidMappings``, ``process.apparmorProfile``, ``hooks``...) is an error naming that field,
because running it without what it asks for would be silently weaker than the author meant. Free-form
maps (``annotations``, ``linux.sysctl``) keep every key. Lists are tuples and maps are tuples of
``(key, value)`` pairs (in document order), so every value is hashable; :meth:`Spec.annotation`
reads one annotation.

Types follow the spec's nesting: :class:`Spec` -> :class:`Process` (:class:`User`,
:class:`Capabilities`, :class:`Rlimit`), :class:`Root`, :class:`Mount`, :class:`Linux`
(:class:`Namespace`, :class:`Resources` with :class:`DeviceRule`/:class:`Memory`/:class:`Cpu`/
:class:`Pids`, :class:`Seccomp` with :class:`SyscallRule`/:class:`SeccompArg`, :class:`Device`).
Semantic checks that need the host (a root that is a directory, supported namespaces) are the
sandbox's; this module checks shape only.
"""

from __future__ import annotations

from ._fields import NAMESPACE_TYPES, InvalidSpec
from .linux import DeviceRule, Linux, Namespace, Pids, Resources, Seccomp, SeccompArg, SyscallRule
from .process import Capabilities, Mount, Process, Rlimit, Root, User
from .spec import Spec

__all__ = ["Spec", "Process", "User", "Capabilities", "Rlimit", "Root", "Mount", "Linux", "Namespace",
           "Resources", "DeviceRule", "Memory", "Cpu", "Pids", "Seccomp", "SyscallRule", "SeccompArg",
           "Device", "InvalidSpec", "NAMESPACE_TYPES"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .limits import Cpu, Device, Memory


def __getattr__(name: str):
    """:class:`Memory`, :class:`Cpu` and :class:`Device` (:mod:`runner.ocispec.limits`), imported on first
    use (PEP 562): most specs have none of them."""
    if name in ("Memory", "Cpu", "Device"):
        from . import limits

        return getattr(limits, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
