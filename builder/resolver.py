"""Plan-time lookups against the store: base images (pulled when absent or with ``--pull``, the
platform's entry of an index, refused when of another os/arch) and ``ADD URL`` downloads, fetched once
per build into a private work dir so the planner can key on their content."""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from typing import TYPE_CHECKING

from layers.descriptor import Platform
from layers.digest import Digest
from layers.value import frozen

from .errors import BuildError
from .options import RegistrySettings
from .plan import BaseImage
from .progress import Progress

if TYPE_CHECKING:
    from layers.store import Store


__all__ = ["Fetched", "StoreResolver"]


@frozen
class Fetched:
    """A file ``ADD URL`` downloaded: where it is, its digest and size."""

    path: str
    digest: Digest
    size: int


def _download(url: str, directory: str, tls_ca: str | None = None) -> Fetched:
    """GET ``url`` (redirects followed, the system CA store or ``--tls-ca``, proxies from the
    environment) into a new 0600 file in ``directory``, hashing as it streams. Last-Modified becomes
    the file's mtime, as Docker sets it."""
    import hashlib
    import ssl
    from email.utils import parsedate_to_datetime

    import httpx

    path = os.path.join(directory, "download-" + uuid.uuid4().hex)
    h = hashlib.sha256()
    size = 0
    tls = ssl.create_default_context(cafile=tls_ca or None)
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=60, verify=tls,
                          headers={"Accept-Encoding": "identity"}) as resp:
            if resp.status_code != 200:
                raise BuildError(f"{url}: HTTP {resp.status_code}")
            modified = resp.headers.get("last-modified")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as f:
                for chunk in resp.iter_raw(1 << 20):
                    h.update(chunk)
                    size += len(chunk)
                    f.write(chunk)
    except httpx.HTTPError as exc:
        raise BuildError(f"{url}: {exc}") from None
    if modified:
        try:
            when = parsedate_to_datetime(modified).timestamp()
            os.utime(path, (when, when))
        except (TypeError, ValueError, OverflowError):
            pass
    return Fetched(path, Digest("sha256", h.hexdigest()), size)


class StoreResolver:
    """Plan-time base image lookup in the local store (pulling when absent or with ``--pull``; only
    with ``registry`` settings: without them an absent image is an error)."""

    def __init__(self, store: Store, registry: RegistrySettings | None = None, pull: bool = False,
                 progress: Progress | None = None, lazy: bool = False) -> None:
        self.store, self.registry, self.pull, self.progress = store, registry, pull, progress
        self.lazy = lazy  # pull base images' manifests and configs only (layers on demand)
        self.images: dict[tuple[str, str], object] = {}
        self._fetched: dict[str, Fetched] = {}
        self._work: str | None = None
        self._lock = threading.Lock()

    def load(self, image: str, platform: str):
        with self._lock:
            key = (image, platform)
            if key not in self.images:
                self.images[key] = self._load(image, platform)
            return self.images[key]

    def _load(self, image: str, platform: str):
        from layers.errors import NotFound, PybuildError

        want = Platform.parse(platform)
        if self.pull and self.registry is not None:
            self._pull(image, platform)
        try:
            record = self.store.images.resolve(image)
        except NotFound:
            if self.registry is None:
                raise
            self._pull(image, platform)
            record = self.store.images.resolve(image)
        try:
            img = self.store.images.load(record, platform=want, lazy=self.lazy)  # an index: the entry for the platform
        except NotFound as missing:  # an index without this platform's image yet: its registry may have it
            if self.registry is None:
                raise
            try:
                self._pull(image, platform)
            except PybuildError:
                raise missing from None
            img = self.store.images.load(self.store.images.resolve(image), platform=want, lazy=self.lazy)
        have = img.config.platform
        if (have.os, have.architecture) != (want.os, want.architecture) and have.architecture:
            raise BuildError(f"image {image} is for {have.os}/{have.architecture}, not {platform} "
                             "(--platform, or FROM --platform=...)")
        return img

    def _pull(self, image: str, platform: str) -> None:
        """Pull ``image`` for ``platform``; the name is given to the index when the registry has one (not
        to the one image pulled), so a build for another platform finds its entry there too."""
        from layers.reference import Reference
        from registry_client.client import Registry
        from registry_client.credentials import CredentialStore
        from registry_client.policy import load_policy
        from registry_client.pull import PullOptions, pull

        ref = Reference.parse(image)
        config = self.registry.transport()
        policy = load_policy(self.registry.policy)  # a bad policy file fails before the pull
        if self.progress:
            self.progress.note(f"pulling {ref} ({platform})")
        with Registry(ref.api_host, config=config, credentials=CredentialStore().get(ref.registry)) as registry:
            with self.store.lease():
                result = pull(self.store, registry.repository(ref.repository), ref,
                              PullOptions(platform=Platform.parse(platform), policy=policy, lazy=self.lazy,
                                          unpack=not self.lazy), None,
                              tag=False)
                self.store.images.tag(ref, result.digest, lazy=self.lazy)

    def fetch(self, url: str) -> Fetched:
        """Download ``url`` once per build (``ADD URL``) into a private directory; the planner puts the
        content digest into the cache key, so a changed remote file reruns the step and what follows."""
        with self._lock:
            done = self._fetched.get(url)
        if done is not None:
            return done
        result = _download(url, self._scratch(), self.registry.tls_ca if self.registry else None)
        with self._lock:
            return self._fetched.setdefault(url, result)

    def fetched(self, url: str) -> Fetched | None:
        with self._lock:
            return self._fetched.get(url)

    def _scratch(self) -> str:
        with self._lock:
            if self._work is None:
                from .workdir import new_workdir

                self._work = new_workdir(self.store.root)
            return self._work

    def close(self) -> None:
        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)
            self._work = None

    def base(self, image: str, platform: str) -> BaseImage:
        img = self.load(image, platform)
        c = img.config.config
        return BaseImage(key=str(img.manifest.digest), env=tuple(c.env), working_dir=c.working_dir,
                         shell=tuple(c.shell) if c.shell else None, onbuild=tuple(c.on_build))
