"""The trust policy podman and skopeo read (``containers-policy.json(5)``, ``containers-registries.d(5)``),
evaluated before a pull commits anything.

Files: ``--policy FILE``, else ``$PYBUILD_POLICY``, else ``~/.config/containers/policy.json`` when it
exists, else ``/etc/containers/policy.json``. A file named by ``--policy`` or ``$PYBUILD_POLICY`` must
exist. When neither is given and no policy file is installed, pybuild pulls as Docker does (accept
anything, no verification), where podman would refuse; installing containers-common (or writing
``~/.config/containers/policy.json``) turns the policy on. ``registries.d``: ``$PYBUILD_REGISTRIES_D``, else ``~/.config/containers/registries.d``
when it exists, else ``/etc/containers/registries.d`` (``*.yaml``; ``default-docker`` and ``docker``
scopes; ``use-sigstore-attachments``).

Requirements (all of a scope's list must hold): ``insecureAcceptAnything``, ``reject``,
``sigstoreSigned`` with ``keyPath``/``keyPaths``/``keyData``/``keyDatas`` and ``signedIdentity``
(``matchExact``, ``matchRepoDigestOrExact`` (default), ``matchRepository``, ``exactReference``,
``exactRepository``). GPG ``signedBy``, Fulcio/PKI/Rekor requirements and ``remapIdentity`` are refused
with an error naming them. The scope for a ``docker`` reference is the most specific of
``host/repo:tag`` (or ``@digest``), ``host/repo``, each parent namespace, ``host``, ``*.domain``
wildcards, then the transport's ``""`` and the global ``default``.
"""

from __future__ import annotations

import base64
import json
import os

from layers.digest import Digest
from layers.errors import InvalidReference
from layers.reference import Reference
from layers.value import frozen

from .errors import KeyFileError, PolicyFileError, PolicyRejected, SignatureError
from .keys import VerificationKey, load_public
from .repository import Repository

__all__ = ["Policy", "Requirement", "SignedIdentity", "load_policy", "policy_path", "attachments_enabled",
           "SYSTEM_POLICY", "SYSTEM_REGISTRIES_D"]

SYSTEM_POLICY = "/etc/containers/policy.json"
SYSTEM_REGISTRIES_D = "/etc/containers/registries.d"
_IDENTITIES = ("matchExact", "matchRepoDigestOrExact", "matchRepository", "exactReference", "exactRepository")


@frozen
class SignedIdentity:
    kind: str = "matchRepoDigestOrExact"
    value: str = ""  # dockerReference / dockerRepository of the exact* kinds

    def accepts(self, signed: str, ref: Reference) -> bool:
        """Does a signature naming ``signed`` (cosign: ``registry/repo``) satisfy this rule for ``ref``?"""
        try:
            sig = Reference.parse(signed, default_tag=None) if signed else None
        except InvalidReference:
            return False
        if sig is None:
            return False
        if self.kind == "matchRepository":
            return sig.name == ref.name
        if self.kind == "exactRepository":
            return sig.name == Reference.parse(self.value, default_tag=None).name
        if self.kind == "exactReference":
            want = Reference.parse(self.value, default_tag=None)
            return (sig.name, sig.tag, sig.digest) == (want.name, want.tag, want.digest)
        exact = (sig.name, sig.tag, sig.digest) == (ref.name, ref.tag, ref.digest) and (sig.tag or sig.digest)
        if self.kind == "matchExact":
            return bool(exact)
        # matchRepoDigestOrExact: a digest reference needs the repository, a tag the exact name:tag
        return sig.name == ref.name if ref.digest is not None else bool(exact)


@frozen
class Requirement:
    kind: str                                   # insecureAcceptAnything | reject | sigstoreSigned
    keys: tuple[VerificationKey, ...] = ()
    identity: SignedIdentity = SignedIdentity()


@frozen
class Policy:
    source: str
    default: tuple[Requirement, ...]
    docker: tuple[tuple[str, tuple[Requirement, ...]], ...] = ()
    registries_d: str | None = None

    def scope_for(self, ref: Reference) -> tuple[str, tuple[Requirement, ...]]:
        """The most specific ``docker`` scope that names ``ref``, and its requirements."""
        table = dict(self.docker)
        for scope in _scopes(ref):
            if scope in table:
                return scope, table[scope]
        if "" in table:
            return "docker default", table[""]
        return "default", self.default

    def enforce(self, repo: Repository, ref: Reference, digest: Digest) -> str:
        """Raise :class:`PolicyRejected` unless every requirement of ``ref``'s scope holds for ``digest``
        (what ``ref`` resolved to); the scope name when they do."""
        from .trust import verify_digest

        scope, requirements = self.scope_for(ref)
        where = f"policy {self.source}, scope {scope!r}"
        if not requirements:
            raise PolicyRejected(f"{ref}: rejected by {where}: the requirement list is empty")
        for req in requirements:
            if req.kind == "reject":
                raise PolicyRejected(f"{ref}: rejected by {where}: 'reject'")
            if req.kind != "sigstoreSigned":
                continue
            if not attachments_enabled(ref, self.registries_d):
                raise PolicyRejected(f"{ref}: rejected by {where}: a sigstore signature is required, but "
                                     "registries.d does not enable use-sigstore-attachments for it")
            try:
                verified = verify_digest(repo, ref, digest, list(req.keys))
            except SignatureError as exc:
                raise PolicyRejected(f"rejected by {where}: {exc}") from None
            if not any(req.identity.accepts(s.identity, ref) for s in verified.signatures):
                names = ", ".join(sorted({s.identity for s in verified.signatures}))
                raise PolicyRejected(f"{ref}: rejected by {where}: signed identity {names} does not satisfy "
                                     f"signedIdentity {req.identity.kind}")
        return scope


def _scopes(ref: Reference) -> list[str]:
    out = []
    if ref.digest is not None:
        out.append(f"{ref.name}@{ref.digest}")
    elif ref.tag is not None:
        out.append(f"{ref.name}:{ref.tag}")
    parts = ref.name.split("/")
    out += ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]
    host = ref.registry.split(":", 1)[0]
    labels = host.split(".")
    out += ["*." + ".".join(labels[i:]) for i in range(1, len(labels))]
    return out


def policy_path(explicit: str | None = None) -> str:
    """Which policy file applies (see the module docstring)."""
    if explicit:
        return explicit
    if os.environ.get("PYBUILD_POLICY"):
        return os.environ["PYBUILD_POLICY"]
    user = os.path.expanduser("~/.config/containers/policy.json")
    return user if os.path.exists(user) else SYSTEM_POLICY


def _registries_d() -> str:
    if os.environ.get("PYBUILD_REGISTRIES_D"):
        return os.environ["PYBUILD_REGISTRIES_D"]
    user = os.path.expanduser("~/.config/containers/registries.d")
    return user if os.path.isdir(user) else SYSTEM_REGISTRIES_D


def load_policy(path: str | None = None) -> Policy:
    """Read and check the policy file; any mistake is a :class:`PolicyFileError` naming the file."""
    chosen = path or os.environ.get("PYBUILD_POLICY")
    path = policy_path(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(4 << 20)
    except FileNotFoundError:
        if not chosen:  # nothing installed, nothing asked for: Docker's behaviour
            return Policy("(no policy file: accept anything, as Docker)", (Requirement("insecureAcceptAnything"),),
                          (), _registries_d())
        raise PolicyFileError(f"no policy file {path}") from None
    except OSError as exc:
        raise PolicyFileError(f"policy {path}: {exc.strerror}") from None
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise PolicyFileError(f"policy {path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise PolicyFileError(f"policy {path}: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(body, dict):
        raise PolicyFileError(f"policy {path}: the document must be a JSON object")
    unknown = set(body) - {"default", "transports"}
    if unknown:
        raise PolicyFileError(f"policy {path}: unknown field {sorted(unknown)[0]!r}")
    if "default" not in body:
        raise PolicyFileError(f"policy {path}: 'default' is missing")
    base = os.path.dirname(os.path.abspath(path))
    default = _requirements(body["default"], f"policy {path}: default", base)
    transports = body.get("transports", {})
    if not isinstance(transports, dict):
        raise PolicyFileError(f"policy {path}: 'transports' must be an object")
    docker = []
    for transport, scopes in transports.items():
        if not isinstance(scopes, dict):
            raise PolicyFileError(f"policy {path}: transports.{transport} must be an object")
        for scope, reqs in scopes.items():
            parsed = _requirements(reqs, f"policy {path}: transports.{transport}[{scope!r}]", base)
            if transport == "docker":
                docker.append((scope, parsed))
    return Policy(path, default, tuple(docker), _registries_d())


def _requirements(value, where: str, base: str) -> tuple[Requirement, ...]:
    if not isinstance(value, list):
        raise PolicyFileError(f"{where}: must be a list of requirements")
    return tuple(_requirement(item, f"{where}[{i}]", base) for i, item in enumerate(value))


def _requirement(item, where: str, base: str) -> Requirement:
    if not isinstance(item, dict) or not isinstance(item.get("type"), str):
        raise PolicyFileError(f"{where}: a requirement is an object with a 'type'")
    kind = item["type"]
    if kind in ("insecureAcceptAnything", "reject"):
        extra = set(item) - {"type"}
        if extra:
            raise PolicyFileError(f"{where}: unknown field {sorted(extra)[0]!r} in {kind}")
        return Requirement(kind)
    if kind == "signedBy":
        raise PolicyFileError(f"{where}: GPG 'signedBy' requirements are not supported by pybuild "
                              "(use 'sigstoreSigned' with a cosign public key)")
    if kind != "sigstoreSigned":
        raise PolicyFileError(f"{where}: unknown requirement type {kind!r}")
    for unsupported in ("fulcio", "pki", "rekorPublicKeyPath", "rekorPublicKeyData", "rekorPublicKeyPaths",
                        "rekorPublicKeyDatas"):
        if unsupported in item:
            raise PolicyFileError(f"{where}: sigstoreSigned '{unsupported}' is not supported by pybuild "
                                  "(public keys only: keyPath, keyPaths, keyData, keyDatas)")
    extra = set(item) - {"type", "keyPath", "keyPaths", "keyData", "keyDatas", "signedIdentity"}
    if extra:
        raise PolicyFileError(f"{where}: unknown field {sorted(extra)[0]!r} in sigstoreSigned")
    keys = []
    try:
        for field in ("keyPath", "keyPaths"):
            values = item.get(field)
            for p in ([values] if isinstance(values, str) else values or []):
                p = p if os.path.isabs(p) else os.path.join(base, p)
                try:
                    with open(p, "rb") as fh:
                        keys.append(load_public(fh.read(1 << 20), p))
                except OSError as exc:
                    raise PolicyFileError(f"{where}: {field} {p}: {exc.strerror}") from None
        for field in ("keyData", "keyDatas"):
            values = item.get(field)
            for i, d in enumerate([values] if isinstance(values, str) else values or []):
                try:
                    pem = base64.b64decode(d, validate=True)
                except (ValueError, TypeError):
                    raise PolicyFileError(f"{where}: {field} is not base64") from None
                keys.append(load_public(pem, f"{field}[{i}]"))
    except KeyFileError as exc:
        raise PolicyFileError(f"{where}: {exc}") from None
    if not keys:
        raise PolicyFileError(f"{where}: sigstoreSigned needs keyPath, keyPaths, keyData or keyDatas")
    return Requirement("sigstoreSigned", tuple(keys), _identity(item.get("signedIdentity"), where))


def _identity(value, where: str) -> SignedIdentity:
    if value is None:
        return SignedIdentity()
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise PolicyFileError(f"{where}: signedIdentity must be an object with a 'type'")
    kind = value["type"]
    if kind == "remapIdentity":
        raise PolicyFileError(f"{where}: signedIdentity 'remapIdentity' is not supported by pybuild")
    if kind not in _IDENTITIES:
        raise PolicyFileError(f"{where}: unknown signedIdentity type {kind!r}")
    field = {"exactReference": "dockerReference", "exactRepository": "dockerRepository"}.get(kind)
    if field is None:
        return SignedIdentity(kind)
    text = value.get(field)
    try:
        Reference.parse(text, default_tag=None)
    except (InvalidReference, TypeError, AttributeError):
        raise PolicyFileError(f"{where}: signedIdentity.{field} {str(text)[:80]!r} is not an image reference") from None
    return SignedIdentity(kind, text)


def attachments_enabled(ref: Reference, directory: str | None) -> bool:
    """``use-sigstore-attachments`` for ``ref`` in ``registries.d`` (most specific scope wins)."""
    if not directory or not os.path.isdir(directory):
        return False
    import yaml

    default = None
    scoped: dict[str, bool] = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".yaml"):
            continue
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as fh:
                doc = yaml.safe_load(fh) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise PolicyFileError(f"registries.d {path}: {str(exc).splitlines()[0][:160]}") from None
        if not isinstance(doc, dict):
            raise PolicyFileError(f"registries.d {path}: the document must be a mapping")
        dflt = doc.get("default-docker") or {}
        if isinstance(dflt, dict) and "use-sigstore-attachments" in dflt:
            default = bool(dflt["use-sigstore-attachments"])
        for scope, conf in (doc.get("docker") or {}).items():
            if isinstance(conf, dict) and "use-sigstore-attachments" in conf:
                scoped[str(scope)] = bool(conf["use-sigstore-attachments"])
    for scope in _scopes(ref):
        if scope in scoped:
            return scoped[scope]
    return bool(default)
