"""Image references: ``[registry[:port]/]repository[:tag][@digest]``.

The grammar and the normalisation are those of Docker's ``distribution/reference``
(``ParseNormalizedNamed``): a first path component counts as a registry only when it contains
``.`` or ``:``, is ``localhost``, or has an upper-case letter; otherwise the registry is
``docker.io``, where single-component names live under ``library/``. A reference without tag or
digest gets the tag ``latest``. Upper-case repository names are refused with a message saying so.
"""

from __future__ import annotations

import re

from .digest import Digest
from .errors import InvalidDigest, InvalidReference
from .value import frozen

__all__ = ["Reference", "DEFAULT_REGISTRY", "DEFAULT_TAG", "valid_tag"]

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
_LEGACY_REGISTRY = "index.docker.io"
_DOCKER_API_HOST = "registry-1.docker.io"
_OFFICIAL_PREFIX = "library/"
#: distribution/reference NameTotalLengthMax: the name as written, registry included.
NAME_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"

_DOMAIN_RE = re.compile(_DOMAIN)
_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_TAG_RE = re.compile(_TAG, re.ASCII)
_ID_RE = re.compile(r"[a-f0-9]{64}")


def valid_tag(tag: str) -> bool:
    """True when ``tag`` matches ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``."""
    return bool(_TAG_RE.fullmatch(tag))


def _split_domain(name: str) -> tuple[str, str]:
    """distribution/reference ``splitDockerDomain``: (registry, repository) of a name."""
    first, sep, rest = name.partition("/")
    if not sep or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        registry, repository = DEFAULT_REGISTRY, name
    else:
        registry, repository = first, rest
    if registry == _LEGACY_REGISTRY:
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in repository:
        repository = _OFFICIAL_PREFIX + repository
    return registry, repository


@frozen(slots=True)
class Reference:
    """A normalised image reference. ``tag`` and ``digest`` may both be set; at least one is."""

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    def __post_init__(self) -> None:
        if not _DOMAIN_RE.fullmatch(self.registry):
            raise InvalidReference(f"invalid registry {self.registry[:80]!r} in image reference")
        if not _PATH_RE.fullmatch(self.repository):
            raise InvalidReference(f"invalid repository name {self.repository[:80]!r}")
        if self.tag is not None and not valid_tag(self.tag):
            raise InvalidReference(f"invalid tag {self.tag[:80]!r}: want [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}")

    @classmethod
    def parse(cls, text: str, *, default_tag: str | None = DEFAULT_TAG) -> "Reference":
        """Parse and normalise ``text`` (``busybox`` -> ``docker.io/library/busybox:latest``).

        ``default_tag`` is used when neither tag nor digest is given (``None`` leaves both unset).
        """
        if not isinstance(text, str) or not text:
            raise InvalidReference("image reference is empty")
        shown = text[:120]
        if any(c.isspace() for c in text):
            raise InvalidReference(f"invalid image reference {shown!r}: contains white space")
        name, at, digest_text = text.partition("@")
        digest = None
        if at:
            try:
                digest = Digest.parse(digest_text)
            except InvalidDigest as exc:
                raise InvalidReference(f"invalid image reference {shown!r}: {exc}") from None
        tag = None
        slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > slash:
            name, tag = name[:colon], name[colon + 1:]
            if not valid_tag(tag):
                raise InvalidReference(
                    f"invalid tag {tag[:80]!r} in image reference {shown!r}: want [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"
                )
        if not name:
            raise InvalidReference(f"invalid image reference {shown!r}: repository name is empty")
        if len(name) > NAME_MAX:
            raise InvalidReference(f"repository name in {shown!r}... is {len(name)} characters, more than {NAME_MAX}")
        if _ID_RE.fullmatch(name):
            raise InvalidReference(
                f"invalid repository name {name[:16]}...: a 64-character hex string is an image id, not a name"
            )
        registry, repository = _split_domain(name)
        if not _DOMAIN_RE.fullmatch(registry):
            raise InvalidReference(f"invalid registry {registry[:80]!r} in image reference {shown!r}")
        if not _PATH_RE.fullmatch(repository):
            if _PATH_RE.fullmatch(repository.lower()):
                raise InvalidReference(f"invalid image reference {shown!r}: repository name must be lowercase")
            raise InvalidReference(
                f"invalid repository name {repository[:80]!r} in {shown!r}: want lowercase components of "
                "[a-z0-9] joined by '.', '_', '__' or '-', separated by '/'"
            )
        full = len(registry) + 1 + len(repository)
        if full > NAME_MAX:  # counted on the normalised name, as distribution/reference does
            raise InvalidReference(f"repository name in {shown!r}... is {full} characters with its registry, "
                                   f"more than {NAME_MAX}")
        if tag is None and digest is None:
            tag = default_tag
        return cls(registry, repository, tag, digest)

    # -- forms ------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def familiar_name(self) -> str:
        """The repository as Docker prints it: ``busybox``, ``user/app``, ``localhost:5000/app``."""
        if self.registry == DEFAULT_REGISTRY:
            repo = self.repository
            return repo[len(_OFFICIAL_PREFIX):] if repo.startswith(_OFFICIAL_PREFIX) and repo.count("/") == 1 else repo
        return self.name

    @property
    def familiar(self) -> str:
        """The short form Docker prints: ``busybox:latest``, ``localhost:5000/app@sha256:...``."""
        return self.familiar_name + self._suffix()

    @property
    def api_host(self) -> str:
        """The host[:port] to talk the distribution API to (``registry-1.docker.io`` for Docker Hub)."""
        return _DOCKER_API_HOST if self.registry == DEFAULT_REGISTRY else self.registry

    @property
    def identifier(self) -> str:
        """What goes after ``/manifests/`` in a registry URL: the digest if known, else the tag."""
        if self.digest is not None:
            return str(self.digest)
        if self.tag is None:
            raise InvalidReference(f"reference {self} has neither tag nor digest")
        return self.tag

    def with_tag(self, tag: str) -> "Reference":
        return Reference(self.registry, self.repository, tag, None)

    def with_digest(self, digest: Digest) -> "Reference":
        return Reference(self.registry, self.repository, self.tag, digest)

    def _suffix(self) -> str:
        out = f":{self.tag}" if self.tag is not None else ""
        return out + (f"@{self.digest}" if self.digest is not None else "")

    def __str__(self) -> str:
        return self.name + self._suffix()
