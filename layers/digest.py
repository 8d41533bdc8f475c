"""Content digests: a validated ``algorithm:hex`` value and hashing helpers.

A :class:`Digest` can only be built from a string that passes the OCI grammar for a
registered algorithm (sha256, sha512) with lowercase hex of the exact length, so a value of
this type is always safe to use in a path or a URL (SECURITY.md case 17).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import BinaryIO

from .errors import IntegrityError, InvalidDigest

__all__ = ["Digest", "ALGORITHMS", "VerifyingReader"]

#: Registered algorithms and the length of their lowercase hex encoding.
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}

_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True, slots=True, order=True)
class Digest:
    """A validated content digest. ``str(d)`` is ``algorithm:hex``."""

    algorithm: str
    hex: str

    def __post_init__(self) -> None:
        want = ALGORITHMS.get(self.algorithm)
        if want is None:
            raise InvalidDigest(f"unsupported digest algorithm {self.algorithm!r}")
        if len(self.hex) != want or not _HEX.fullmatch(self.hex):
            raise InvalidDigest(
                f"invalid {self.algorithm} digest {self.hex[:80]!r}: want {want} lowercase hex characters"
            )

    @classmethod
    def parse(cls, text: str) -> "Digest":
        """Parse ``algorithm:hex``; raise :class:`InvalidDigest` on anything else."""
        if not isinstance(text, str):
            raise InvalidDigest(f"digest must be a string, got {type(text).__name__}")
        alg, sep, hx = text.partition(":")
        if not sep:
            raise InvalidDigest(f"invalid digest {text[:80]!r}: missing 'algorithm:'")
        return cls(alg, hx)

    @classmethod
    def from_bytes(cls, data: bytes, algorithm: str = "sha256") -> "Digest":
        """The digest of ``data``."""
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self) -> "hashlib._Hash":
        """A fresh hash object of this digest's algorithm."""
        return hashlib.new(self.algorithm)

    def matches(self, data: bytes) -> bool:
        return hashlib.new(self.algorithm, data).hexdigest() == self.hex

    @property
    def short(self) -> str:
        """The first 12 hex characters, as Docker prints image ids."""
        return self.hex[:12]

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


class VerifyingReader:
    """Wraps a binary stream; hashes as it is read and checks digest and size at EOF.

    Raises :class:`IntegrityError` as soon as more than ``size`` bytes arrive, and at EOF when
    the byte count or the digest differs. Callers must read to EOF (``read()`` returning
    ``b""``) before trusting the data; :meth:`verify_rest` does that.
    """

    def __init__(self, raw: BinaryIO, digest: Digest, size: int | None, what: str = "blob") -> None:
        self._raw = raw
        self._digest = digest
        self._size = size
        self._what = what
        self._hash = digest.hasher()
        self._count = 0
        self._done = False

    def read(self, n: int = -1) -> bytes:
        if self._done or n == 0:
            return b""
        if self._size is not None:
            # Never read more than size + 1 bytes from the source (SECURITY.md case 14).
            left = self._size + 1 - self._count
            n = left if n is None or n < 0 else min(n, left)
        chunk = self._raw.read(n)
        if chunk:
            self._count += len(chunk)
            if self._size is not None and self._count > self._size:
                raise IntegrityError(f"{self._what} {self._digest}: more than the expected {self._size} bytes")
            self._hash.update(chunk)
            return chunk
        self._finish()
        return b""

    def _finish(self) -> None:
        self._done = True
        if self._size is not None and self._count != self._size:
            raise IntegrityError(
                f"{self._what} {self._digest}: got {self._count} bytes, expected {self._size}"
            )
        got = self._hash.hexdigest()
        if got != self._digest.hex:
            raise IntegrityError(
                f"{self._what} {self._digest}: content hashes to {self._digest.algorithm}:{got}"
            )

    def verify_rest(self, bufsize: int = 1 << 20) -> None:
        """Read and discard the rest, raising on mismatch."""
        while self.read(bufsize):
            pass

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> "VerifyingReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
