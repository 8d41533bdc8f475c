"""Errors of the registry client, all under :class:`RegistryError` (a :class:`PybuildError`).

::

    RegistryError                 a registry answered with an error, or could not be talked to
    ├── RegistryUnavailable       connection failures, 5xx and 429 after the retries ran out
    ├── AuthenticationRequired    401: no or wrong credentials (never carries the password)
    ├── AccessDenied              403 / DENIED
    ├── RemoteNotFound            404 / *_UNKNOWN (also a :class:`layers.errors.NotFound`)
    ├── ResponseTooLarge          a manifest or error body passed its cap
    ├── UnsafeRedirect            a redirect that would downgrade https to http, or too many hops
    ├── CredentialsError          a credential helper or the auth file failed
    ├── SignatureError            a signature or bundle does not verify (wrong key, digest, identity)
    └── PolicyRejected            a containers-policy.json requirement refused an image
    KeyFileError (InvalidInput)   a signing key file or passphrase is wrong or unreadable
    PolicyFileError (InvalidInput) a policy.json / registries.d file is malformed (names the file)
    Cancelled (a PybuildError)    a parallel transfer stopped because a sibling failed (never reported)

Digest and size mismatches of content are :class:`layers.errors.IntegrityError`.
"""

from __future__ import annotations

from layers.errors import InvalidInput, NotFound, PybuildError
from layers.value import frozen

__all__ = [
    "RegistryError",
    "RegistryUnavailable",
    "AuthenticationRequired",
    "AccessDenied",
    "RemoteNotFound",
    "ResponseTooLarge",
    "UnsafeRedirect",
    "CredentialsError",
    "Cancelled",
    "ErrorDetail",
    "SignatureError",
    "PolicyRejected",
    "KeyFileError",
    "PolicyFileError",
]


@frozen(slots=True)
class ErrorDetail:
    """One entry of a registry's ``{"errors": [{"code", "message", "detail"}]}`` body."""

    code: str
    message: str


class RegistryError(PybuildError):
    """A registry operation failed. ``status`` is the HTTP status (0 when none), ``errors`` the parsed body."""

    def __init__(self, message: str, *, status: int = 0, errors: tuple[ErrorDetail, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors

    @property
    def code(self) -> str:
        """The first registry error code (``MANIFEST_UNKNOWN``...), or ``""``."""
        return self.errors[0].code if self.errors else ""


class RegistryUnavailable(RegistryError):
    """The registry could not be reached, or kept answering 5xx/429."""


class AuthenticationRequired(RegistryError):
    """The registry refused our credentials (or we had none)."""


class AccessDenied(RegistryError):
    """Authenticated, but not allowed to do this."""


class RemoteNotFound(RegistryError, NotFound):
    """The repository, manifest or blob does not exist on the registry."""


class ResponseTooLarge(RegistryError):
    """A response body was larger than the cap for its kind."""


class UnsafeRedirect(RegistryError):
    """A redirect was refused (https -> http downgrade, a non-http scheme, too many hops)."""


class CredentialsError(RegistryError):
    """Reading or writing credentials failed."""


class Cancelled(PybuildError):
    """A transfer stopped because a sibling failed or the caller was interrupted (never the error
    reported: :func:`registry_client.parallel.run_parallel` raises the first real failure)."""


class SignatureError(RegistryError):
    """A signature, payload or bundle failed verification: no signature, another key, another digest,
    another identity, or content that does not match its digest."""


class PolicyRejected(RegistryError):
    """The trust policy (``policy.json``) refuses this image; the message says which requirement."""


class KeyFileError(InvalidInput):
    """A key file is malformed, of an unsupported kind, or its passphrase is wrong."""


class PolicyFileError(InvalidInput):
    """A ``policy.json`` or ``registries.d`` file is malformed: the message names the file and field."""
