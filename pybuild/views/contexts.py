"""The data ``--format`` templates run on, with Docker's placeholder names (``docker/cli``'s
formatter contexts): one object per row whose methods are the fields (``{{.ID}}``, ``{{.Label "k"}}``),
``to_json()`` for ``{{json .}}`` and ``--format json``, and the column titles of ``table`` formats.
Built from the library's typed values; nothing here reads a store."""

from __future__ import annotations

__all__ = ["ContainerFields", "ImageFields", "HistoryFields", "StatsFields", "PortFields", "NetworkFields",
           "VolumeFields", "CONTAINER_TITLES", "IMAGE_TITLES", "HISTORY_TITLES", "STATS_TITLES",
           "NETWORK_TITLES", "VOLUME_TITLES", "PS_TABLE", "IMAGES_TABLE", "HISTORY_TABLE", "STATS_TABLE",
           "NETWORK_TABLE", "VOLUME_TABLE", "go_time", "ellipsis", "network_document", "bytes_size", "template_for"]

CONTAINER_TITLES = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
                    "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
                    "Names": "NAMES", "Labels": "LABELS", "Label": "LABEL", "Mounts": "MOUNTS",
                    "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES"}
PS_TABLE = r"{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

IMAGE_TITLES = {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
                "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
                "VirtualSize": "VIRTUAL SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
                "Platforms": "PLATFORMS"}
IMAGES_TABLE = r"{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"

HISTORY_TITLES = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
                  "Size": "SIZE", "Comment": "COMMENT"}
HISTORY_TABLE = r"{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"

STATS_TITLES = {"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
                "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
                "PIDs": "PIDS"}
STATS_TABLE = r"{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

NETWORK_TITLES = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
                  "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}
NETWORK_TABLE = r"{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"

VOLUME_TITLES = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
                 "Labels": "LABELS", "Size": "SIZE"}
VOLUME_TABLE = r"{{.Driver}}\t{{.Name}}"


def template_for(fmt: str | None, default: str, plain: tuple[str, ...] = ("table",)):
    """The parsed ``--format`` (a :class:`pybuild.template.Template`), or ``None`` when the command's
    own rendering applies: no format, or one of ``plain``. The engine is imported only when needed."""
    if fmt is None or fmt.strip() in plain:
        return None
    from pybuild.template import Template

    return Template(fmt, default)


def go_time(t: float | None) -> str:
    """Go's ``time.Time.String()`` in UTC, as ``docker ps`` shows CreatedAt: ``2024-01-02 03:04:05 +0000 UTC``."""
    from datetime import datetime, timezone     # not at import: stats and ps tables need none of it

    return datetime.fromtimestamp(t or 0, timezone.utc).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def ellipsis(s: str, n: int) -> str:
    """Docker's ``Ellipsis``: at most ``n`` characters, the last one ``…`` when cut."""
    return s if len(s) <= n else s[:n - 1] + "…"


def _labels(labels: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _size(n: float) -> str:
    """Docker's ``units.HumanSizeWithPrecision(n, 3)``: decimal units, ``4.26MB``."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.3g}{unit}"
        n /= 1000
    return f"{n}B"


def bytes_size(n: float) -> str:
    """Docker's ``units.BytesSize``: binary units, ``1.5MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.4g}{unit}"
        n /= 1024
    return f"{n}B"


class ContainerFields:
    """A row of ``ps``: a :class:`runner.records.ContainerInfo`; ``trunc`` as without ``--no-trunc``;
    ``size`` its :class:`runner.listing.ContainerSize` when measured (``ps -s``)."""

    def __init__(self, info, *, trunc: bool = True, now: float | None = None, size=None):
        self._info, self._trunc, self._now, self._size = info, trunc, now, size

    def ID(self) -> str:
        cfg = self._info.config
        return cfg.short_id if self._trunc else cfg.id

    def Names(self) -> str:
        return self._info.config.name

    def Image(self) -> str:
        return self._info.config.image

    def Command(self) -> str:
        import json

        cmd = " ".join(self._info.config.command)
        return json.dumps(ellipsis(cmd, 20) if self._trunc else cmd, ensure_ascii=False)

    def CreatedAt(self) -> str:
        return go_time(self._info.config.created)

    def RunningFor(self) -> str:
        from .containers import human_ago

        return human_ago(self._info.config.created, self._now) + " ago"

    def Ports(self) -> str:
        from .containers import ports_text

        return ports_text(self._info.config.ports)

    def State(self) -> str:
        from .containers import display_status

        return display_status(self._info.state)

    def Status(self) -> str:
        from .containers import human_status

        return human_status(self._info.state, self._now)

    def Size(self) -> str:
        """Docker's ``2B (virtual 1.2MB)``; ``0B`` when not measured."""
        if self._size is None:
            return "0B"
        return f"{_size(self._size.rw)} (virtual {_size(self._size.virtual)})"

    def Labels(self) -> str:
        return _labels(self._info.config.labels)

    def Label(self, name: str) -> str:
        return str(self._info.config.labels.get(name, ""))

    def Mounts(self) -> str:
        binds = [m for m in self._info.config.spec.mounts if m.is_bind and not m.destination.startswith("/etc/")]
        return ",".join(ellipsis(m.source or "", 15) if self._trunc else (m.source or "") for m in binds)

    def Networks(self) -> str:
        net = self._info.config.network
        return ",".join([net.network or net.mode] + [x.network for x in self._info.config.extra_networks])

    def LocalVolumes(self) -> str:
        return "0"

    def to_json(self) -> dict:
        """``ps --format json``: pybuild's row (full ID, ExitCode, Pid) with Docker's fields added."""
        from .containers import ps_document

        doc = ps_document(self._info)
        for name in ("Labels", "Mounts", "Networks", "RunningFor", "Size", "LocalVolumes"):
            doc[name] = getattr(self, name)()
        return dict(sorted(doc.items()))


class ImageFields:
    """A row of ``images``: an image record, its creation time (RFC 3339) and size."""

    def __init__(self, record, created: str, size: int, *, trunc: bool = True, platforms: tuple[str, ...] = (),
                 missing: int = 0, entries: tuple = ()):
        self._record, self._created, self._size, self._trunc = record, created, size, trunc
        self._platforms, self._missing, self._entries = platforms, missing, entries

    def Platforms(self) -> str:
        """An index record's platforms (``linux/amd64,linux/arm64``); empty for a one-platform image."""
        from .images import platforms_cell

        return platforms_cell(self._platforms, self._missing)

    def ID(self) -> str:
        return self._record.id.short if self._trunc else str(self._record.id)

    def Repository(self) -> str:
        from .images import split_name

        return split_name(self._record.name)[0]

    def Tag(self) -> str:
        from .images import split_name

        return split_name(self._record.name)[1]

    def Digest(self) -> str:
        return str(self._record.repo_digest)

    def CreatedSince(self) -> str:
        from .images import human_ago

        return human_ago(self._created)

    def CreatedAt(self) -> str:
        return _rfc3339_as_go(self._created)

    def Size(self) -> str:
        return _size(self._size)

    VirtualSize = Size

    def SharedSize(self) -> str:
        return "N/A"

    UniqueSize = SharedSize

    def Containers(self) -> str:
        return "N/A"

    def to_json(self) -> dict:
        """``images --format json``: pybuild's row (full ID, Size in bytes) with Docker's fields added."""
        from .images import image_json

        doc = image_json(self._record, self._created, self._size, self._entries, self._platforms)
        doc.update(CreatedSince=self.CreatedSince(), Containers="N/A", SharedSize="N/A", UniqueSize="N/A",
                   VirtualSize=self.Size())
        return dict(sorted(doc.items()))


def _rfc3339_as_go(created: str) -> str:
    try:
        from datetime import datetime

        return go_time(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return created


class HistoryFields:
    """A row of ``history``: ``(id column, history entry, diff_id, size)`` of :func:`views.images.history_rows`."""

    def __init__(self, row, *, trunc: bool = True):
        self._ident, self._h, self._diff_id, self._layer_size = row
        self._trunc = trunc

    def ID(self) -> str:
        return self._ident

    def CreatedSince(self) -> str:
        from .images import human_ago

        return human_ago(self._h.created)

    def CreatedAt(self) -> str:
        return self._h.created

    def CreatedBy(self) -> str:
        by = self._h.created_by
        return ellipsis(by, 45) if self._trunc else by

    def Size(self) -> str:
        return _size(self._layer_size)

    def Comment(self) -> str:
        return self._h.comment

    def to_json(self) -> dict:
        from .images import history_json

        return dict(sorted(history_json(self._ident, self._h, self._diff_id, self._layer_size).items()))


class StatsFields:
    """A row of ``stats``: a :class:`runner.listing.Stats` sample, its values worded as Docker's."""

    def __init__(self, s):
        self._s = s

    def Container(self) -> str:
        return self._s.id[:12]

    def ID(self) -> str:
        return self._s.id[:12]

    def Name(self) -> str:
        return self._s.name

    def CPUPerc(self) -> str:
        return f"{self._s.cpu_percent:.2f}%"

    def MemUsage(self) -> str:
        lim = bytes_size(self._s.memory_limit) if self._s.memory_limit else "0B"
        return f"{bytes_size(self._s.memory_usage)} / {lim}"

    def MemPerc(self) -> str:
        lim = self._s.memory_limit
        return f"{100 * self._s.memory_usage / lim:.2f}%" if lim else "0.00%"

    def NetIO(self) -> str:
        return f"{_size(self._s.net_rx)} / {_size(self._s.net_tx)}"

    def BlockIO(self) -> str:
        return f"{_size(self._s.block_read)} / {_size(self._s.block_write)}"

    def PIDs(self) -> str:
        return str(self._s.pids)

    def to_json(self) -> dict:
        return {k: getattr(self, k)() for k in STATS_TITLES}


class PortFields:
    """A line of ``port``: one published port (``{{.PrivatePort}}``, ``{{.HostPort}}``...)."""

    def __init__(self, p):
        self._p = p

    def PrivatePort(self) -> int:
        return self._p.container_port

    def PublicPort(self) -> int:
        return self._p.host_port

    HostPort = PublicPort

    def Type(self) -> str:
        return self._p.protocol

    def IP(self) -> str:
        return self._p.host_ip or "0.0.0.0"

    HostIp = IP

    def to_json(self) -> dict:
        return {"IP": self.IP(), "PrivatePort": self.PrivatePort(), "PublicPort": self.PublicPort(),
                "Type": self.Type()}


class _DocFields:
    """A row made from an inspect-like document: its keys are the fields."""

    _titles: dict = {}

    def __init__(self, doc: dict, *, trunc: bool = True):
        self._doc, self._trunc = doc, trunc

    def __getattr__(self, name: str):
        if name.startswith("_") or name not in self._doc:
            raise AttributeError(name)
        value = self._doc[name]
        return lambda: value

    def Labels(self) -> str:
        return _labels(self._doc.get("Labels") or {})

    def Label(self, name: str) -> str:
        return str((self._doc.get("Labels") or {}).get(name, ""))

    def to_json(self) -> dict:
        return self._doc


class NetworkFields(_DocFields):
    """A row of ``network ls`` from a network's inspect document."""

    def ID(self) -> str:
        ident = str(self._doc.get("Id", ""))
        return ident[:12] if self._trunc else ident

    def Name(self) -> str:
        return str(self._doc.get("Name", ""))

    def Driver(self) -> str:
        return str(self._doc.get("Driver", "bridge"))

    def Scope(self) -> str:
        return str(self._doc.get("Scope", "local"))

    def IPv6(self) -> str:
        return "true" if self._doc.get("EnableIPv6") else "false"

    def Internal(self) -> str:
        return "true" if self._doc.get("Internal") else "false"

    def CreatedAt(self) -> str:
        return str(self._doc.get("Created", ""))


class VolumeFields(_DocFields):
    """A row of ``volume ls`` from a volume's inspect document."""

    def Name(self) -> str:
        return str(self._doc.get("Name", ""))

    def Driver(self) -> str:
        return str(self._doc.get("Driver", "local"))

    def Scope(self) -> str:
        return str(self._doc.get("Scope", "local"))

    def Mountpoint(self) -> str:
        return str(self._doc.get("Mountpoint", ""))

    def Size(self) -> str:
        return "N/A"


def network_document(cfg) -> dict:
    """Docker's ``network inspect`` fields of a :class:`runner.network.config.NetworkConfig`."""
    return {"Name": cfg.name, "Id": cfg.id, "Created": cfg.created, "Scope": "local", "Driver": "bridge",
            "EnableIPv6": False, "IPAM": {"Driver": "default", "Options": {},
                                          "Config": [{"Subnet": cfg.subnet, "Gateway": cfg.gateway}]},
            "Internal": cfg.internal, "Attachable": False, "Ingress": False,
            "Options": {"com.docker.network.bridge.name": cfg.bridge}, "Labels": {}}
