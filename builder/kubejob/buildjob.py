"""A Kubernetes Job that builds and pushes an image with pybuild, from :class:`BuildJobOptions`.

The Job runs one container of the pybuild image (the repository's ``Dockerfile``: pybuild on the
``PATH`` as ``ENTRYPOINT``, user 1000 with subordinate id ranges) as
``pybuild build --push -t DEST... CONTEXT``, where CONTEXT is

* ``-``: a tar of the context on the container's standard input (``stdin`` and ``stdinOnce``: the
  first ``kubectl attach -i`` streams it, and its end closes it), or
* a git URL (``URL#REF:SUBDIR``, as ``docker build`` reads it), fetched inside the pod.

What the pod asks of the cluster, and nothing more:

* an ``emptyDir`` at :data:`WORK_DIR` for the store, the state directory and temporary files (overlay
  cannot put its upper directory on the container's own overlay root);
* registry credentials, when ``secret`` names one, from a ``kubernetes.io/dockerconfigjson`` Secret:
  its ``.dockerconfigjson`` key is mounted as ``config.json`` in :data:`AUTH_DIR`, which
  ``DOCKER_CONFIG`` names (pybuild reads Docker's config from there);
* a non-root user (``runAsNonRoot``, uid and gid 1000) and seccomp ``Unconfined`` (the default
  profile of most runtimes refuses the ``unshare`` of a user namespace); no capabilities are added and
  ``allowPrivilegeEscalation`` stays unset (``newuidmap`` gains CAP_SETUID from its file capabilities at
  exec: no_new_privs would stop it);
* as options, for clusters that support them: ``hostUsers: false`` (a user namespace for the pod)
  and ``procMount: Unmasked`` (a ``/proc`` RUN steps can mount their own over; Kubernetes accepts it
  only with ``hostUsers: false``, so it needs that option too);
* ``PYBUILD_INSECURE_REGISTRIES`` for registries reached over plain http (an in-cluster registry);
* resource requests and limits as given; no service account token; ``backoffLimit: 0`` (a failed
  build is reported, not retried: a stdin context cannot be streamed twice).

Every option is checked before anything is rendered: :class:`builder.errors.JobSpecError` (or
:class:`builder.errors.ContextError` for the context) with a one-line message naming the option.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from layers.value import frozen

from ..errors import JobSpecError
from .model import (Container, EmptyDirVolumeSource, EnvVar, Job, JobSpec, KeyToPath, ObjectMeta, PodSecurityContext,
                    PodSpec, PodTemplateSpec, ResourceRequirements, SeccompProfile, SecretVolumeSource,
                    SecurityContext, Volume, VolumeMount)

__all__ = ["BuildJobOptions", "build_job", "parse_quantity", "WORK_DIR", "AUTH_DIR", "USER_ID"]

WORK_DIR = "/pybuild"
AUTH_DIR = "/etc/pybuild/registry-auth"
USER_ID = 1000
_LABEL = ("app.kubernetes.io/managed-by", "pybuild")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Kubernetes' quantity grammar (apimachinery resource.Quantity): a non-negative decimal and a binary
# (Ki..Ei), decimal (n, u, m, k, M..E) or exponent (e3, E-2) suffix
_QUANTITY = re.compile(r"^(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$")
_SCALE = {"": 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": 10**3, "M": 10**6,
          "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
          "Pi": 2**50, "Ei": 2**60}


@frozen
class BuildJobOptions:
    """What ``pybuild kube build-job`` was asked for. Quantities are Kubernetes quantity strings;
    ``cpu``/``memory`` set the request and the limit alike, the ``*_request``/``*_limit`` fields
    override one side."""

    destinations: tuple[str, ...]
    context: str
    image: str
    name: str | None = None
    dockerfile: str | None = None
    secret: str | None = None
    cpu: str | None = None
    cpu_request: str | None = None
    cpu_limit: str | None = None
    memory: str | None = None
    memory_request: str | None = None
    memory_limit: str | None = None
    store_size: str | None = None
    insecure_registries: tuple[str, ...] = ()
    host_users: bool = True
    proc_unmasked: bool = False


def build_job(options: BuildJobOptions) -> Job:
    """The Job for ``options`` (module docstring); :class:`JobSpecError` for a malformed option."""
    destinations = _destinations(options.destinations)
    stdin = _context(options.context)
    image = _image(options.image)
    if options.secret is not None and not _subdomain(options.secret):
        raise JobSpecError(f"--secret: {options.secret!r} is not a Secret name (lowercase letters, digits, '-', '.')")
    if options.proc_unmasked and options.host_users:
        raise JobSpecError("--proc-unmasked needs --no-host-users: Kubernetes allows procMount Unmasked only "
                           "in a pod with its own user namespace (hostUsers: false)")
    if options.dockerfile is not None and (not options.dockerfile or options.dockerfile == "-"):
        raise JobSpecError("--file: name a Dockerfile inside the context")
    name = options.name if options.name is not None else _default_name(destinations[0])
    if len(name) > 63 or not _DNS_LABEL.match(name):
        raise JobSpecError(f"--name: {name!r} is not a Job name (at most 63 lowercase letters, digits and '-')")
    volumes = [Volume("work", empty_dir=EmptyDirVolumeSource(_quantity("--store-size", options.store_size)))]
    mounts = [VolumeMount("work", WORK_DIR)]
    env = [EnvVar("PYBUILD_ROOT", f"{WORK_DIR}/root"), EnvVar("PYBUILD_STATE", f"{WORK_DIR}/state"),
           EnvVar("TMPDIR", WORK_DIR)]
    if options.insecure_registries:
        env.append(EnvVar("PYBUILD_INSECURE_REGISTRIES", ",".join(_hosts(options.insecure_registries))))
    if options.secret is not None:
        items = (KeyToPath(".dockerconfigjson", "config.json"),)
        volumes.append(Volume("registry-auth", secret=SecretVolumeSource(options.secret, items)))
        mounts.append(VolumeMount("registry-auth", AUTH_DIR, read_only=True))
        env.append(EnvVar("DOCKER_CONFIG", AUTH_DIR))
    args = ["build", "--push", "--progress", "plain"]
    for dest in destinations:
        args += ["-t", dest]
    if options.dockerfile is not None:
        args += ["-f", options.dockerfile]
    args.append(options.context)
    container = Container(
        name="build", image=image, command=("pybuild",), args=tuple(args), env=tuple(env),
        volume_mounts=tuple(mounts), resources=_resources(options),
        security_context=SecurityContext(proc_mount="Unmasked") if options.proc_unmasked else None,
        stdin=True if stdin else None, stdin_once=True if stdin else None)
    pod = PodSpec(
        containers=(container,), restart_policy="Never", volumes=tuple(volumes),
        security_context=PodSecurityContext(run_as_non_root=True, run_as_user=USER_ID, run_as_group=USER_ID,
                                            seccomp_profile=SeccompProfile("Unconfined")),
        host_users=None if options.host_users else False, automount_service_account_token=False)
    meta = ObjectMeta(name=name, labels=(_LABEL,))
    template = PodTemplateSpec(metadata=ObjectMeta(labels=(_LABEL,)), spec=pod)
    return Job(metadata=meta, spec=JobSpec(backoff_limit=0, template=template))


def parse_quantity(text: str) -> Decimal:
    """The value of a Kubernetes quantity (``"1.5Gi"`` -> 1610612736); ValueError if malformed."""
    m = _QUANTITY.match(text)
    if not m:
        raise ValueError(text)
    suffix = m.group("suffix") or ""
    try:
        number = Decimal(m.group("num"))
        if suffix[:1] in ("e", "E"):
            return number.scaleb(int(suffix[1:]))
        return number * _SCALE[suffix]
    except (InvalidOperation, ValueError):
        raise ValueError(text) from None


def _destinations(values: tuple[str, ...]) -> list[str]:
    from layers.errors import InvalidReference
    from layers.reference import Reference

    if not values:
        raise JobSpecError("-t: name at least one destination (REGISTRY/REPOSITORY[:TAG])")
    out = []
    for text in values:
        try:
            ref = Reference.parse(text)
        except InvalidReference as exc:
            raise JobSpecError(f"-t: {exc}") from None
        if ref.digest is not None:
            raise JobSpecError(f"-t: {text!r}: a destination names a tag, not a digest")
        out.append(text)
    return out


def _context(text: str) -> bool:
    """True for a stdin context; a git URL is checked (:class:`ContextError`)."""
    if text == "-":
        return True
    from ..errors import ContextError
    from ..gitcontext import GitSource, is_git_url

    if not is_git_url(text):
        raise JobSpecError(f"--context: {text!r}: expected '-' (a tar on stdin) or a git URL "
                           "(https://HOST/PATH.git#REF:SUBDIR, git://, ssh://, git@HOST:PATH)")
    try:
        GitSource.parse(text)
    except ContextError as exc:
        raise JobSpecError(f"--context: {exc}") from None
    return False


def _image(text: str) -> str:
    from layers.errors import InvalidReference
    from layers.reference import Reference

    try:
        Reference.parse(text)
    except InvalidReference as exc:
        raise JobSpecError(f"--image: {exc}") from None
    return text


def _hosts(values: tuple[str, ...]) -> list[str]:
    from layers.errors import InvalidReference
    from layers.reference import Reference

    for host in values:
        try:
            ok = Reference.parse(f"{host}/x").registry == host
        except InvalidReference:
            ok = False
        if not ok:
            raise JobSpecError(f"--insecure-registry: {host!r} is not a registry host (HOST[:PORT])")
    return list(values)


def _subdomain(text: str) -> bool:
    return len(text) <= 253 and bool(_DNS_SUBDOMAIN.match(text))


def _default_name(destination: str) -> str:
    """``pybuild-`` and the destination's last path component, made a DNS label (``reg/team/My_App:1``
    -> ``pybuild-my-app``)."""
    last = destination.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
    slug = re.sub(r"[^a-z0-9]+", "-", last.lower()).strip("-")
    return f"pybuild-{slug}"[:63].rstrip("-")


def _quantity(option: str, text: str | None) -> str | None:
    if text is None:
        return None
    try:
        value = parse_quantity(text)
    except ValueError:
        raise JobSpecError(f"{option}: {text!r} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 4Gi)") from None
    if value <= 0:
        raise JobSpecError(f"{option}: {text!r} must be more than zero")
    return text


def _resources(options: BuildJobOptions) -> ResourceRequirements | None:
    requests: list[tuple[str, str]] = []
    limits: list[tuple[str, str]] = []
    for resource, both, request, limit in (("cpu", options.cpu, options.cpu_request, options.cpu_limit),
                                           ("memory", options.memory, options.memory_request, options.memory_limit)):
        want = _quantity(f"--{resource}-request", request) or _quantity(f"--{resource}", both)
        cap = _quantity(f"--{resource}-limit", limit) or _quantity(f"--{resource}", both)
        if want and cap and parse_quantity(want) > parse_quantity(cap):
            raise JobSpecError(f"--{resource}-request: {want} is more than the limit {cap}")
        if want:
            requests.append((resource, want))
        if cap:
            limits.append((resource, cap))
    if not requests and not limits:
        return None
    return ResourceRequirements(requests=tuple(requests), limits=tuple(limits))
