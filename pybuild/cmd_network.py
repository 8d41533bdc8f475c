"""``pybuild network create|ls|rm|inspect|connect|disconnect``: a few lines each over :mod:`runner.network`
and :mod:`runner.netconnect`."""

from __future__ import annotations

import json

import click

from .context import Settings, pass_settings

__all__ = ["network_group"]


@click.group("network")
def network_group() -> None:
    """Manage bridge networks."""


@network_group.command("create")
@click.option("--subnet", default=None, help="IPv4 subnet in CIDR form (default: first free /24 in 10.150.0.0/16).")
@click.option("--gateway", default=None, help="Gateway address (default: first address of the subnet).")
@click.option("--bridge", "bridge", default=None, help="Bridge interface name (default: pbr-<hash of store and name>).")
@click.option("--internal", is_flag=True, help="No outbound NAT for this network.")
@click.argument("name")
@pass_settings
def create_cmd(settings: Settings, subnet: str | None, gateway: str | None, bridge: str | None,
               internal: bool, name: str) -> None:
    """Create a network; containers on it reach each other by name."""
    from runner import network

    cfg = network.create_network(settings.root, name, subnet=subnet, gateway=gateway, bridge=bridge,
                                 internal=internal)
    click.echo(cfg.id)


@network_group.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only network ids.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate network ids.")
@click.option("-f", "--filter", "filters", multiple=True,
              help="name=, id=, driver=, label=, type=custom|builtin (repeatable).")
@click.option("--format", "fmt", default=None, help="'table', 'json', or a Go template ('{{.Name}} {{.Driver}}').")
@pass_settings
def ls_cmd(settings: Settings, quiet: bool, no_trunc: bool, filters: tuple[str, ...], fmt: str | None) -> None:
    """List networks."""
    from runner import network

    from .template import Template
    from .views import contexts as ctx
    from .views.networks import parse_filters

    keep = parse_filters(filters, network.DEFAULT_NETWORK)
    nets = [n for n in network.list_networks(settings.root) if keep(n)]
    if quiet:
        for n in nets:
            click.echo(n.id if no_trunc else n.id[:12])
        return
    template = ctx.template_for(fmt, ctx.NETWORK_TABLE) or Template("table " + ctx.NETWORK_TABLE)
    rows = [ctx.NetworkFields(ctx.network_document(n), trunc=not no_trunc) for n in nets]
    for line in template.lines(rows, ctx.NETWORK_TITLES):
        click.echo(line)


@network_group.command("rm")
@click.argument("names", nargs=-1, required=True)
@pass_settings
def rm_cmd(settings: Settings, names: tuple[str, ...]) -> int:
    """Remove networks (refused while containers are attached)."""
    from layers.errors import PybuildError
    from runner import network

    failed = None
    for name in names:
        try:
            network.remove_network(settings.root, name)
        except PybuildError as exc:
            click.echo(f"pybuild: {exc}", err=True)
            failed = exc
            continue
        click.echo(name)
    return failed.exit_code if failed is not None else 0


@network_group.command("inspect")
@click.option("-f", "--format", "fmt", default=None,
              help="Format each network with a Go template ('{{.Name}}', '{{range .IPAM.Config}}{{.Subnet}}{{end}}').")
@click.argument("names", nargs=-1, required=True)
@pass_settings
def inspect_cmd(settings: Settings, fmt: str | None, names: tuple[str, ...]) -> None:
    """Show networks as Docker's JSON document, with pybuild's bridge state, NAT status and endpoints."""
    from runner import network

    template = None
    if fmt and fmt.strip() != "json":         # Docker: "json" is the plain document
        from .template import Template

        template = Template(fmt)
    from .views.networks import inspect_document

    by_name = {n.name: n for n in network.list_networks(settings.root)}
    docs = []
    for n in names:
        facts = network.inspect_network(settings.root, n)
        docs.append(inspect_document(by_name[facts["name"]], facts))
    if template is None:
        click.echo(json.dumps(docs, indent=2))
        return
    for d in docs:
        click.echo(template.execute(d))


@network_group.command("connect")
@click.option("--alias", "aliases", multiple=True, help="Add a network-scoped alias for the container.")
@click.option("--ip", default=None, help="IPv4 address on the network.")
@click.argument("network_name", metavar="NETWORK")
@click.argument("container")
@pass_settings
def connect_cmd(settings: Settings, aliases: tuple[str, ...], ip: str | None, network_name: str,
                container: str) -> None:
    """Connect a container to a network (a running one at once, a stopped one at its next start)."""
    from runner.netconnect import connect
    from runner.state import ContainerStore

    connect(ContainerStore(settings.root, settings.state_dir), container, network_name, aliases=aliases, ip=ip)


@network_group.command("disconnect")
@click.option("-f", "--force", is_flag=True, help="No error when the container is gone or not connected.")
@click.argument("network_name", metavar="NETWORK")
@click.argument("container")
@pass_settings
def disconnect_cmd(settings: Settings, force: bool, network_name: str, container: str) -> None:
    """Disconnect a container from a network it joined beside its first."""
    from runner.netconnect import disconnect
    from runner.state import ContainerStore

    disconnect(ContainerStore(settings.root, settings.state_dir), container, network_name, force=force)
