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

__all__ = ["ComposeError", "ComposeFileError", "ComposeFileNotFound", "InterpolationError", "BuildSpec",
           "ConfigSpec", "Dependency", "FileRef", "HealthSpec", "MountSpec", "NetworkSpec", "PortSpec",
           "Project", "ResourceLimits", "SecretSpec", "Service", "ServiceNetwork", "Ulimit", "VolumeSpec"]
