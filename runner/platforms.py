"""Which platform's image a container runs (``run --platform``), and whether this machine can run it.

:func:`load_image` picks ``platform``'s entry of an index record (or checks a one-platform image is
that platform) and, when the image is not for this machine, asks :mod:`runner.binfmt` for an emulator:
without one it raises :class:`~runner.errors.EmulationUnavailable` before any container exists.
:func:`platform_warning` is Docker's warning for an image of another platform run without ``--platform``.
"""

from __future__ import annotations

from layers.descriptor import Platform
from layers.errors import InvalidInput

from . import binfmt
from .errors import InvalidRunOption

__all__ = ["parse_platform", "load_image", "platform_warning"]


def parse_platform(text: str | None) -> str | None:
    """``--platform os/arch[/variant]`` (``linux`` alone means this host's) -> its normal form, or None."""
    if not text:
        return None
    parts = text.strip().lower().split("/")
    if len(parts) == 1 and parts[0]:
        parts = [parts[0], binfmt.host_platform()[1]]
    try:
        return str(Platform.parse("/".join(parts)))
    except InvalidInput as exc:
        raise InvalidRunOption(f"--platform {text}: {exc}") from None


def load_image(images, record, platform: str | None):
    """``images`` (a ``layers.store.ImageStore``) loads ``record`` for ``platform`` (None: this host's).
    An explicit platform must be what the image is; a foreign one needs an emulator (see module doc)."""
    want = Platform.parse(platform) if platform else None
    image = images.load(record, platform=want) if want is not None else images.load(record)
    have = image.config.platform
    if want is not None and not have.matches(Platform(want.os, want.architecture)):
        raise InvalidRunOption(f"--platform {platform}: image {record.name or record.manifest_digest} is {have}; "
                               f"it has no {platform} image")
    if have.architecture:
        binfmt.require(have.os or "linux", have.architecture, have.variant)
    return image


def platform_warning(image, requested: str | None) -> str | None:
    """Docker's warning when the image is not for this host and no ``--platform`` asked for it."""
    have = image.config.platform
    if requested or not have.architecture or binfmt.native(have.os or "linux", have.architecture):
        return None
    host = "/".join(binfmt.host_platform())
    return (f"WARNING: The requested image's platform ({have}) does not match the detected host platform "
            f"({host}) and no specific platform was requested")
