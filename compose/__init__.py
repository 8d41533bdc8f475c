"""compose: Compose Specification projects for pybuild.

Loading (``compose.load.load_project``): files -> YAML with lines -> interpolation -> merge and
extends -> schema validation -> normalisation -> a frozen :class:`compose.model.Project`.
Only the CLI imports this room; it imports builder, runner, registry_client and layers.
"""

from __future__ import annotations

from compose.errors import ComposeError, ComposeFileError, ComposeFileNotFound, InterpolationError
from compose.model import (BuildSpec, ConfigSpec, Dependency, FileRef, HealthSpec, MountSpec, NetworkSpec,
                           PortSpec, Project, ResourceLimits, SecretSpec, Service, ServiceNetwork, Ulimit,
                           VolumeSpec)

__all__ = ["load_project", "config_text", "ComposeError", "ComposeFileError", "ComposeFileNotFound", "InterpolationError", "BuildSpec",
           "ConfigSpec", "Dependency", "FileRef", "HealthSpec", "MountSpec", "NetworkSpec", "PortSpec",
           "Project", "ResourceLimits", "SecretSpec", "Service", "ServiceNetwork", "Ulimit", "VolumeSpec"]


def __getattr__(name: str):
    """``compose.load_project`` and ``compose.config_text`` load their modules on first use."""
    if name == "load_project":
        from compose.load import load_project
        return load_project
    if name == "config_text":
        from compose.render import config_text
        return config_text
    raise AttributeError(f"module 'compose' has no attribute {name!r}")
