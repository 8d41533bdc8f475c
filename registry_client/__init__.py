"""The OCI distribution client: auth, manifests and blobs up and down, pull and push.

Modules: :mod:`.errors` (the RegistryError tree), :mod:`.transport` (scheme/TLS rules, httpx
client factory), :mod:`.auth` (Basic/Bearer challenge flow), :mod:`.credentials` (auth file, Docker
config, credential helpers), :mod:`.client` (``Registry``: one host, retries, redirects),
:mod:`.repository` (``Repository``: manifests, tags, blobs up and down), :mod:`.responses` (capped
reads, typed errors from registry bodies), :mod:`.store` (the protocols pull and push need of the
local store), :mod:`.pull`, :mod:`.push`, :mod:`.parallel`, :mod:`.progress`, :mod:`.sources`
(cross-repository mount hints).

Public names are re-exported here lazily, so importing the package does not import httpx.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Registry", "Repository", "Document",
    "TransportConfig", "Credentials", "CredentialStore",
    "PullOptions", "PullResult", "pull", "PushOptions", "PushResult", "push",
    "RegistryError", "RegistryUnavailable", "AuthenticationRequired", "AccessDenied", "RemoteNotFound",
    "ResponseTooLarge", "UnsafeRedirect", "CredentialsError", "Cancelled",
    "LocalStore", "ContentStore", "BlobIngest", "ImageTagger",
]

_WHERE = {
    "Registry": "client", "Repository": "repository", "Document": "responses",
    "LocalStore": "store", "ContentStore": "store", "BlobIngest": "store", "ImageTagger": "store",
    "TransportConfig": "transport", "Credentials": "credentials", "CredentialStore": "credentials",
    "PullOptions": "pull", "PullResult": "pull", "pull": "pull",
    "PushOptions": "push", "PushResult": "push", "push": "push",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name, "errors" if name in __all__ else None)
    if module is None:
        raise AttributeError(f"module 'registry_client' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
