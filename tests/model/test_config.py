"""ImageConfig: every image-spec field survives parse -> edit -> bytes; schemas; malformed configs."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from layers import ContainerConfig, Digest, Healthcheck, History, ImageConfig, InvalidDocument, InvalidInput, Platform
from layers.config import format_time

from . import schemas

D1 = Digest.from_bytes(b"layer1")
D2 = Digest.from_bytes(b"layer2")

# A config as Docker/BuildKit write them, with every field the image spec knows plus Docker extras.
FULL = {
    "created": "2024-05-01T12:34:56.123456789Z",
    "author": "Jane <jane@example.com>",
    "architecture": "arm",
    "variant": "v7",
    "os": "linux",
    "os.version": "6.1",
    "os.features": ["f1"],
    "config": {
        "User": "1000:1000",
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}, "8080": {}},
        "Env": ["PATH=/usr/bin:/bin", "A=b=c"],
        "Entrypoint": ["/entry.sh"],
        "Cmd": ["serve", "--port", "80"],
        "Volumes": {"/data": {}},
        "WorkingDir": "/srv",
        "Labels": {"org.opencontainers.image.title": "x", "empty": ""},
        "StopSignal": "SIGQUIT",
        "ArgsEscaped": True,
        "Healthcheck": {"Test": ["CMD-SHELL", "wget -q -O- localhost"], "Interval": 30000000000,
                        "Timeout": 5000000000, "StartPeriod": 1000000000, "StartInterval": 500000000, "Retries": 3},
        "OnBuild": ["RUN echo hi"],
        "Shell": ["/bin/ash", "-c"],
        "Hostname": "",
        "AttachStdin": False,
    },
    "rootfs": {"type": "layers", "diff_ids": [str(D1), str(D2)]},
    "history": [
        {"created": "2024-05-01T12:00:00Z", "created_by": "ADD rootfs.tar /", "comment": "base"},
        {"created": "2024-05-01T12:00:01+02:00", "created_by": "ENV A=b", "empty_layer": True},
        {"created_by": "RUN make", "author": "ci"},
    ],
    "container_config": {"Cmd": ["/bin/sh"]},
    "docker_version": "24.0.0",
}


def test_parse_every_field():
    raw = json.dumps(FULL, indent=2).encode()
    c = ImageConfig.parse(raw)
    assert c.raw == raw and c.digest == Digest.from_bytes(raw) and c.to_bytes() == raw
    assert (c.created, c.author, c.architecture, c.variant, c.os, c.os_version, c.os_features) == (
        FULL["created"], FULL["author"], "arm", "v7", "linux", "6.1", ("f1",))
    cc = c.config
    assert cc.user == "1000:1000"
    assert cc.exposed_ports == ("53/udp", "80/tcp", "8080")
    assert cc.env == ("PATH=/usr/bin:/bin", "A=b=c") and cc.env_map["A"] == "b=c"
    assert cc.entrypoint == ("/entry.sh",) and cc.cmd == ("serve", "--port", "80")
    assert cc.volumes == ("/data",) and cc.working_dir == "/srv"
    assert cc.label_map == {"org.opencontainers.image.title": "x", "empty": ""}
    assert cc.stop_signal == "SIGQUIT" and cc.args_escaped is True
    assert cc.healthcheck == Healthcheck(("CMD-SHELL", "wget -q -O- localhost"), 30 * 10**9, 5 * 10**9, 10**9,
                                         5 * 10**8, 3)
    assert cc.on_build == ("RUN echo hi",) and cc.shell == ("/bin/ash", "-c")
    assert c.diff_ids == (D1, D2) and c.rootfs.type == "layers"
    assert [h.created_by for h in c.history] == ["ADD rootfs.tar /", "ENV A=b", "RUN make"]
    assert c.history[1].empty_layer and c.history[0].comment == "base" and c.history[2].author == "ci"
    assert [d for _, d in c.layer_history()] == [D1, None, D2]
    assert c.platform == Platform("linux", "arm", "v7", "6.1", ("f1",))


def test_reserialised_config_keeps_every_modelled_field_and_validates():
    c = ImageConfig.parse(json.dumps(FULL).encode())
    edited = c.with_config(user="root")
    body = json.loads(edited.raw)
    schemas.validate(body, schemas.CONFIG)
    assert "container_config" not in body and "Hostname" not in body["config"]
    again = ImageConfig.parse(edited.raw)
    assert again == edited and again.digest == edited.digest
    assert again.config == replace(c.config, user="root")
    assert again.history == c.history and again.created == c.created


def test_null_fields_as_docker_writes_them():
    body = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Cmd": None, "Entrypoint": None, "Env": None, "Labels": None, "OnBuild": None,
                       "Volumes": None, "ExposedPorts": None, "Healthcheck": None, "Shell": None},
            "history": None}
    c = ImageConfig.parse(json.dumps(body).encode())
    assert c.config == ContainerConfig() and c.history == ()
    assert ImageConfig.parse(b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}').config \
        == ContainerConfig()


def test_new_and_edits_return_new_values():
    base = ImageConfig.new(Platform("linux", "amd64"), created=datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    assert base.created == "2024-01-02T03:04:05Z" and base.diff_ids == ()
    schemas.validate(base.raw, schemas.CONFIG)
    one = base.with_layer(D1, History(created=base.created, created_by="ADD x /"))
    two = one.with_history(History(created_by="CMD [\"sh\"]")).with_config(cmd=["sh"], entrypoint=[])
    assert base.diff_ids == () and one.diff_ids == (D1,)
    assert two.history[-1].empty_layer and two.config.cmd == ("sh",) and two.config.entrypoint == ()
    assert json.loads(two.raw)["config"]["Entrypoint"] == []  # [] (cleared) is not the same as absent
    assert len({base.digest, one.digest, two.digest}) == 3
    for c in (one, two):
        schemas.validate(c.raw, schemas.CONFIG)
        assert ImageConfig.parse(c.raw) == c
    cleared = two.with_config(cmd=None)
    assert "Cmd" not in json.loads(cleared.raw)["config"]
    labelled = two.with_config(labels={"b": "2", "a": "1"}, exposed_ports=["80/tcp", "80/tcp"], volumes=["/v"])
    assert labelled.config.labels == (("a", "1"), ("b", "2")) and labelled.config.exposed_ports == ("80/tcp",)
    assert two.with_fields(author="me").author == "me"
    with pytest.raises(AttributeError):
        two.os = "windows"  # type: ignore[misc]


def test_full_config_is_deterministic():
    a = ImageConfig.parse(json.dumps(FULL).encode()).with_config()
    b = ImageConfig.parse(json.dumps(FULL, indent=4, sort_keys=True).encode()).with_config()
    assert a.raw == b.raw and a.digest == b.digest


def test_edit_errors():
    c = ImageConfig.new(Platform("linux", "amd64"))
    with pytest.raises(InvalidInput, match="unknown container config field 'cmmd'"):
        c.with_config(cmmd=["x"])
    with pytest.raises(InvalidInput, match="exposed port"):
        c.with_config(exposed_ports=["http"])
    with pytest.raises(InvalidInput, match="empty_layer"):
        c.with_layer(D1, History(empty_layer=True))
    with pytest.raises(InvalidInput, match="RFC 3339"):
        c.with_fields(created="yesterday")
    with pytest.raises(InvalidInput, match="history created"):
        c.with_layer(D1, History(created="1 May 2024"))


def test_format_time():
    assert format_time(0) == "1970-01-01T00:00:00Z"
    assert format_time(1.5) == "1970-01-01T00:00:01.5Z"


def _bad(**over):
    body = json.loads(json.dumps(FULL))
    for path, value in over.items():
        obj = body
        keys = path.split("__")
        for k in keys[:-1]:
            obj = obj[k]
        if value is KeyError:
            del obj[keys[-1]]
        else:
            obj[keys[-1]] = value
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    "over, field",
    [
        ({"architecture": KeyError}, "architecture"),
        ({"os": 1}, "os"),
        ({"rootfs": KeyError}, "rootfs"),
        ({"rootfs__type": "tarballs"}, "rootfs.type"),
        ({"rootfs__diff_ids": [str(D1), "sha256:../../etc"]}, "rootfs.diff_ids[1]"),
        ({"rootfs__diff_ids": "x"}, "rootfs.diff_ids"),
        ({"created": "yesterday"}, "created"),
        ({"created": "2024-13-01T00:00:00Z"}, "created"),
        ({"history": [{"created": "1 May"}]}, "history[0].created"),
        ({"history": [{"empty_layer": "yes"}]}, "history[0].empty_layer"),
        ({"history": ["x"]}, "history[0]"),
        ({"config": "x"}, "config"),
        ({"config__Env": "A=b"}, "config.Env"),
        ({"config__Env": ["A=b", 3]}, "config.Env[1]"),
        ({"config__Cmd": "sh"}, "config.Cmd"),
        ({"config__ExposedPorts": {"80/tcp": 1}}, "config.ExposedPorts.80/tcp"),
        ({"config__ExposedPorts": {"99999/tcp": {}}}, "config.ExposedPorts.99999/tcp"),
        ({"config__ExposedPorts": {"80/icmp": {}}}, "config.ExposedPorts.80/icmp"),
        ({"config__Labels": {"a": 1}}, "config.Labels.a"),
        ({"config__ArgsEscaped": "true"}, "config.ArgsEscaped"),
        ({"config__Healthcheck__Test": ["RUN", "x"]}, "config.Healthcheck.Test[0]"),
        ({"config__Healthcheck__Interval": -1}, "config.Healthcheck.Interval"),
        ({"config__Healthcheck__Retries": 1.5}, "config.Healthcheck.Retries"),
        ({"os.features": "x"}, "os.features"),
    ],
)
def test_malformed_config_fields_are_named(over, field):
    with pytest.raises(InvalidDocument) as err:
        ImageConfig.parse(_bad(**over))
    assert err.value.field == field, str(err.value)
    assert str(err.value).startswith("invalid config: field ")
