"""``pybuild kube build-job``: options -> :class:`builder.kubejob.BuildJobOptions` -> a Job manifest on stdout."""

from __future__ import annotations

import click

__all__ = ["kube_group"]


@click.group("kube")
def kube_group() -> None:
    """Kubernetes manifests for builds in a cluster."""


@kube_group.command("build-job")
@click.option("-t", "--tag", "destinations", multiple=True, metavar="DESTINATION",
              help="Push the image here: REGISTRY/REPOSITORY[:TAG] (repeatable).")
@click.option("--context", required=True, metavar="GIT_URL|-",
              help="'-' (a tar streamed to the pod's stdin) or a git URL (https://HOST/PATH.git#REF:SUBDIR).")
@click.option("--image", envvar="PYBUILD_KUBE_IMAGE", default=None, metavar="EXECUTOR",
              help="The pybuild image (built from pybuild's Dockerfile) the Job runs [env PYBUILD_KUBE_IMAGE].")
@click.option("-f", "--file", "dockerfile", default=None, help="Dockerfile path inside the context.")
@click.option("--secret", default=None, metavar="NAME",
              help="A kubernetes.io/dockerconfigjson Secret with the registry credentials.")
@click.option("--name", default=None, help="Job name (default: pybuild-<repository>).")
@click.option("--cpu", default=None, help="CPU request and limit (e.g. 500m, 2).")
@click.option("--cpu-request", default=None, help="CPU request (overrides --cpu).")
@click.option("--cpu-limit", default=None, help="CPU limit (overrides --cpu).")
@click.option("--memory", default=None, help="Memory request and limit (e.g. 512Mi, 4Gi).")
@click.option("--memory-request", default=None, help="Memory request (overrides --memory).")
@click.option("--memory-limit", default=None, help="Memory limit (overrides --memory).")
@click.option("--store-size", default=None, help="Size limit of the emptyDir holding the store (e.g. 20Gi).")
@click.option("--insecure-registry", "insecure", multiple=True, metavar="HOST[:PORT]",
              help="A registry the pod reaches over plain http (repeatable).")
@click.option("--no-host-users", "no_host_users", is_flag=True,
              help="hostUsers: false (a user namespace for the pod; clusters with user namespaces).")
@click.option("--proc-unmasked", is_flag=True,
              help="procMount: Unmasked (needs --no-host-users; clusters that allow it).")
def build_job_cmd(destinations: tuple[str, ...], context: str, image: str | None, dockerfile: str | None,
                  secret: str | None, name: str | None, cpu, cpu_request, cpu_limit, memory, memory_request,
                  memory_limit, store_size, insecure: tuple[str, ...], no_host_users: bool, proc_unmasked: bool) -> None:
    """Print a Kubernetes Job (YAML) that builds CONTEXT with pybuild and pushes it to each DESTINATION."""
    from builder.errors import JobSpecError
    from builder.kubejob import BuildJobOptions, build_job, to_yaml

    if not image:
        raise JobSpecError("--image: name the pybuild image the cluster pulls (built from pybuild's "
                           "Dockerfile), or set PYBUILD_KUBE_IMAGE")
    options = BuildJobOptions(
        destinations=destinations, context=context, image=image, name=name, dockerfile=dockerfile, secret=secret,
        cpu=cpu, cpu_request=cpu_request, cpu_limit=cpu_limit, memory=memory, memory_request=memory_request,
        memory_limit=memory_limit, store_size=store_size, insecure_registries=insecure,
        host_users=not no_host_users,
        proc_unmasked=proc_unmasked)
    click.echo(to_yaml(build_job(options)), nl=False)
