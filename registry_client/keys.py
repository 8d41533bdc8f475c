"""Signing keys in cosign's files: ``cosign.key`` (encrypted private key) and ``cosign.pub``.

The private key file is a PEM block ``ENCRYPTED SIGSTORE PRIVATE KEY`` (older cosign wrote
``ENCRYPTED COSIGN PRIVATE KEY``; both load) whose body is JSON::

    {"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": <base64 32 bytes>},
     "cipher": {"name": "nacl/secretbox", "nonce": <base64 24 bytes>},
     "ciphertext": <base64 secretbox(PKCS#8 DER of the key)>}

The secretbox key is ``scrypt(passphrase, salt, N, r, p, 32)``. The public key is SubjectPublicKeyInfo
PEM. pybuild generates ECDSA P-256 keys (cosign's default) and loads P-256/P-384 ECDSA, RSA and
Ed25519 keys. A wrong passphrase, a malformed file or an unsupported key is a :class:`KeyFileError`
naming the file; the passphrase is never printed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

from layers.value import frozen

from .errors import KeyFileError

__all__ = ["SigningKey", "VerificationKey", "generate", "load_private", "load_public", "passphrase_from",
           "read_key_file", "load_signing_key", "PEM_TYPE", "LEGACY_PEM_TYPES"]

PEM_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY"
LEGACY_PEM_TYPES = ("ENCRYPTED COSIGN PRIVATE KEY",)
_SCRYPT = {"N": 32768, "r": 8, "p": 1}
_SCRYPT_MAX_N = 1 << 20


def _pem_blocks(text: str) -> list[tuple[str, bytes]]:
    """``(type, der)`` of each PEM block in ``text``."""
    blocks = []
    kind = None
    body: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("-----BEGIN ") and line.endswith("-----"):
            kind, body = line[11:-5], []
        elif line.startswith("-----END ") and kind is not None:
            try:
                blocks.append((kind, base64.b64decode("".join(body), validate=True)))
            except ValueError:
                raise KeyFileError(f"PEM block {kind}: body is not base64") from None
            kind = None
        elif kind is not None:
            body.append(line)
    return blocks


def _pem(kind: str, der: bytes) -> bytes:
    b64 = base64.b64encode(der).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return ("\n".join([f"-----BEGIN {kind}-----", *lines, f"-----END {kind}-----"]) + "\n").encode()


@frozen
class VerificationKey:
    """A public key: verifies signatures over bytes (ECDSA with SHA-256/384, RSA PKCS#1 v1.5 or PSS, Ed25519)."""

    public_key: Any
    source: str = ""

    @property
    def pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.public_key.public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)

    @property
    def hint(self) -> str:
        """The key hint of a Sigstore bundle: base64 of the SHA-256 of the DER SubjectPublicKeyInfo."""
        from cryptography.hazmat.primitives import serialization

        der = self.public_key.public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(hashlib.sha256(der).digest()).decode()

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True when ``signature`` is this key's signature over ``data``."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

        key = self.public_key
        try:
            if isinstance(key, ec.EllipticCurvePublicKey):
                algo = hashes.SHA384() if key.curve.key_size == 384 else (
                    hashes.SHA512() if key.curve.key_size == 521 else hashes.SHA256())
                key.verify(signature, data, ec.ECDSA(algo))
            elif isinstance(key, rsa.RSAPublicKey):
                try:
                    key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
                except InvalidSignature:
                    key.verify(signature, data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
            elif isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, data)
            else:
                return False
        except (InvalidSignature, ValueError):
            return False
        return True


@frozen
class SigningKey:
    """A private key that signs bytes the way cosign does (ECDSA: DER signature over SHA-256)."""

    private_key: Any
    source: str = ""

    @property
    def public(self) -> VerificationKey:
        return VerificationKey(self.private_key.public_key(), self.source)

    def sign(self, data: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

        key = self.private_key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            algo = hashes.SHA384() if key.curve.key_size == 384 else (
                hashes.SHA512() if key.curve.key_size == 521 else hashes.SHA256())
            return key.sign(data, ec.ECDSA(algo))
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(data)
        raise KeyFileError(f"{self.source}: unsupported key type {type(key).__name__}")


def _scrypt_key(passphrase: bytes, salt: bytes, params: dict) -> bytes:
    n, r, p = params["N"], params["r"], params["p"]
    if not all(isinstance(v, int) and v > 0 for v in (n, r, p)) or n > _SCRYPT_MAX_N or n & (n - 1):
        raise ValueError(f"scrypt parameters N={n} r={r} p={p} out of range")
    return hashlib.scrypt(passphrase, salt=salt, n=n, r=r, p=p, dklen=32, maxmem=256 * n * r + (2 << 20))


def _check_key(key: Any, where: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
            raise KeyFileError(f"{where}: ECDSA curve {key.curve.name} is not supported (P-256, P-384, P-521)")
    elif not isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey | ed25519.Ed25519PrivateKey
                        | ed25519.Ed25519PublicKey):
        raise KeyFileError(f"{where}: unsupported key type {type(key).__name__}")


def generate(passphrase: bytes) -> tuple[bytes, bytes]:
    """A new ECDSA P-256 key pair: ``(cosign.key bytes, cosign.pub bytes)``."""
    import nacl.secret
    import nacl.utils
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    salt = os.urandom(32)
    nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
    box = nacl.secret.SecretBox(_scrypt_key(passphrase, salt, _SCRYPT))
    ciphertext = box.encrypt(der, nonce).ciphertext
    body = {
        "kdf": {"name": "scrypt", "params": dict(_SCRYPT), "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    private_pem = _pem(PEM_TYPE, json.dumps(body, separators=(",", ":")).encode())
    return private_pem, VerificationKey(key.public_key()).pem


def load_private(data: bytes, passphrase: bytes, where: str = "key") -> SigningKey:
    """Decrypt a cosign private key file's bytes with ``passphrase``."""
    import nacl.exceptions
    import nacl.secret
    from cryptography.hazmat.primitives import serialization

    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise KeyFileError(f"{where}: not a PEM file") from None
    blocks = [(k, d) for k, d in _pem_blocks(text) if k == PEM_TYPE or k in LEGACY_PEM_TYPES]
    if not blocks:
        kinds = ", ".join(k for k, _ in _pem_blocks(text)) or "none"
        raise KeyFileError(f"{where}: no '{PEM_TYPE}' PEM block (found: {kinds})")
    try:
        body = json.loads(blocks[0][1])
        kdf, cipher = body["kdf"], body["cipher"]
        if kdf.get("name") != "scrypt" or cipher.get("name") != "nacl/secretbox":
            raise KeyFileError(f"{where}: unsupported kdf {kdf.get('name')!r} / cipher {cipher.get('name')!r}")
        salt = base64.b64decode(kdf["salt"])
        nonce = base64.b64decode(cipher["nonce"])
        ciphertext = base64.b64decode(body["ciphertext"])
        secret = _scrypt_key(passphrase, salt, kdf["params"])
    except KeyFileError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyFileError(f"{where}: malformed encrypted key ({type(exc).__name__}: {str(exc)[:80]})") from None
    try:
        der = nacl.secret.SecretBox(secret).decrypt(ciphertext, nonce)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise KeyFileError(f"{where}: cannot decrypt the key: wrong passphrase (or a damaged file)") from None
    try:
        key = serialization.load_der_private_key(der, None)
    except ValueError:
        raise KeyFileError(f"{where}: the decrypted key is not a PKCS#8 private key") from None
    _check_key(key, where)
    return SigningKey(key, where)


def load_public(data: bytes, where: str = "key") -> VerificationKey:
    """A SubjectPublicKeyInfo PEM public key (``cosign.pub``)."""
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        hint = " (that is a private key; verify with the .pub file)" if b"PRIVATE KEY" in data else ""
        raise KeyFileError(f"{where}: not a PEM public key{hint}") from None
    _check_key(key, where)
    return VerificationKey(key, where)


def passphrase_from(passphrase_file: str | None, *, env: dict | None = None) -> bytes:
    """The passphrase: the first line of ``passphrase_file`` (trailing newline dropped), else
    ``COSIGN_PASSWORD``. Neither is a :class:`KeyFileError` (pybuild never prompts or echoes)."""
    environ = os.environ if env is None else env
    if passphrase_file is not None:
        try:
            with open(passphrase_file, "rb") as fh:
                raw = fh.read(1 << 16)
        except OSError as exc:
            raise KeyFileError(f"--passphrase-file {passphrase_file}: {exc.strerror}") from None
        return raw.split(b"\n", 1)[0].rstrip(b"\r")
    if "COSIGN_PASSWORD" in environ:
        return environ["COSIGN_PASSWORD"].encode()
    raise KeyFileError("no passphrase: give --passphrase-file FILE or set COSIGN_PASSWORD")


def read_key_file(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(1 << 20)
    except OSError as exc:
        raise KeyFileError(f"key {path}: {exc.strerror}") from None


def load_signing_key(path: str, passphrase_file: str | None = None) -> SigningKey:
    """The decrypted key of the cosign key file ``path`` (passphrase as :func:`passphrase_from` finds it)."""
    return load_private(read_key_file(path), passphrase_from(passphrase_file), path)
