"""Digest grammar, hashing, and the verifying reader (SECURITY.md cases 13, 14, 17)."""

from __future__ import annotations

import hashlib
import io

import pytest

from layers import Descriptor, Digest, IntegrityError, InvalidDigest, InvalidDocument, MediaType, Platform

HELLO = hashlib.sha256(b"hello").hexdigest()


def test_parse_round_trip():
    d = Digest.parse(f"sha256:{HELLO}")
    assert str(d) == f"sha256:{HELLO}"
    assert d == Digest.from_bytes(b"hello")
    assert d.short == HELLO[:12]


@pytest.mark.parametrize("bad", [
    "sha256:../../x", f"sha256:{HELLO.upper()}", f"sha256:{HELLO[:-1]}", f"sha256:{HELLO}0",
    f"md5:{HELLO}", HELLO, "", f"sha256:{HELLO[:-1]}/", "sha512:" + "a" * 64, f"SHA256:{HELLO}",
])
def test_bad_digests_refused(bad):
    with pytest.raises(InvalidDigest):
        Digest.parse(bad)


def test_sha512_accepted():
    d = Digest.from_bytes(b"x", "sha512")
    assert Digest.parse(str(d)) == d and len(d.hex) == 128


def _read_all(reader) -> bytes:
    out = b""
    while chunk := reader.read(3):
        out += chunk
    return out


def test_verifying_reader_accepts_good_bytes():
    r = Digest.from_bytes(b"hello")
    from layers import VerifyingReader
    assert _read_all(VerifyingReader(io.BytesIO(b"hello"), r, 5)) == b"hello"


@pytest.mark.parametrize("body,size", [(b"hellO", 5), (b"hell", 5), (b"hello!", 5), (b"hello", 4)])
def test_verifying_reader_refuses(body, size):
    from layers import VerifyingReader
    with pytest.raises(IntegrityError):
        _read_all(VerifyingReader(io.BytesIO(body), Digest.from_bytes(b"hello"), size))


def test_verifying_reader_never_reads_past_size_plus_one():
    from layers import VerifyingReader

    class Endless(io.RawIOBase):
        served = 0

        def read(self, n=-1):
            n = 1 << 20 if n is None or n < 0 else n
            self.served += n
            return b"x" * n

    src = Endless()
    with pytest.raises(IntegrityError):
        VerifyingReader(src, Digest.from_bytes(b"hello"), 5).verify_rest()
    assert src.served <= 6


def test_descriptor_errors_name_the_field():
    obj = {"mediaType": MediaType.OCI_LAYER_GZIP, "digest": "sha256:../../x", "size": 3}
    with pytest.raises(InvalidDocument, match="layers\\[1\\].digest"):
        Descriptor.from_dict(obj, "manifest", "layers[1]")
    with pytest.raises(InvalidDocument, match="size"):
        Descriptor.from_dict({**obj, "digest": f"sha256:{HELLO}", "size": "3"}, "manifest", "config")


def test_descriptor_round_trip_with_platform():
    obj = {"mediaType": MediaType.OCI_MANIFEST, "digest": f"sha256:{HELLO}", "size": 5,
           "annotations": {"a": "b"}, "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}}
    d = Descriptor.from_dict(obj)
    assert d.to_dict() == obj
    assert d.platform.matches(Platform.parse("linux/arm64"))
    assert not d.platform.matches(Platform.parse("linux/amd64"))
