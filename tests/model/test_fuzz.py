"""Seeded random documents: everything the builders make fits the OCI schemas and parses back equal,
and mutated bytes or mutated JSON values only ever raise InvalidDocument (never another exception)."""

from __future__ import annotations

import json
import random

import pytest

from layers import (
    Descriptor, Digest, Healthcheck, History, ImageConfig, Index, InvalidDocument, Manifest, MediaType, Platform,
    parse_document,
)
from layers.errors import PybuildError

from . import schemas

SEEDS = range(40)


def rand_text(rng: random.Random, n: int = 8) -> str:
    alphabet = "abcXYZ019 _-./:=é\u2603\\\"\n"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, n)))


def rand_descriptor(rng: random.Random, media_type: str | None = None) -> Descriptor:
    return Descriptor(
        media_type or rng.choice([MediaType.OCI_LAYER_GZIP, MediaType.OCI_LAYER_ZSTD, MediaType.OCI_LAYER,
                                  "application/vnd.example+json"]),
        Digest.from_bytes(rng.randbytes(8), rng.choice(["sha256", "sha512"])),
        rng.randint(0, 1 << 40),
        urls=tuple(f"https://example.com/{i}" for i in range(rng.randint(0, 2))),
        annotations=tuple(sorted({rand_text(rng) or "k": rand_text(rng) for _ in range(rng.randint(0, 3))}.items())),
        platform=rng.choice([None, Platform("linux", "arm64", "v8", "1.0", ("sse4",))]),
    )


def rand_manifest(rng: random.Random) -> Manifest:
    docker = rng.random() < 0.3
    config = rand_descriptor(rng, MediaType.DOCKER_CONFIG if docker else MediaType.OCI_CONFIG)
    layers = [rand_descriptor(rng, MediaType.DOCKER_LAYER_GZIP if docker else None) for _ in range(rng.randint(1, 5))]
    extra = {} if docker else {"annotations": {rand_text(rng) or "a": rand_text(rng)} if rng.random() < 0.5 else None,
                               "subject": rand_descriptor(rng, MediaType.OCI_MANIFEST) if rng.random() < 0.3 else None}
    return Manifest.build(config, layers, docker=docker, **extra)


def rand_config(rng: random.Random) -> ImageConfig:
    c = ImageConfig.new(Platform("linux", rng.choice(["amd64", "arm64", "arm"]), rng.choice(["", "v7"])),
                        created=rng.choice([None, "2024-02-29T23:59:59.999999999Z", "2001-01-01T00:00:00+05:30"]),
                        author=rand_text(rng))
    for i in range(rng.randint(0, 4)):
        if rng.random() < 0.3:
            c = c.with_history(History(created_by=rand_text(rng), comment=rand_text(rng)))
        c = c.with_layer(Digest.from_bytes(bytes([i]) + rng.randbytes(4)), History(created_by=rand_text(rng)))
    return c.with_config(
        user=rand_text(rng), env=[f"K{i}={rand_text(rng)}" for i in range(rng.randint(0, 3))],
        entrypoint=rng.choice([None, [], [rand_text(rng)]]), cmd=rng.choice([None, [], ["sh", "-c", rand_text(rng)]]),
        exposed_ports=[f"{rng.randint(1, 65535)}/{rng.choice(['tcp', 'udp'])}" for _ in range(rng.randint(0, 2))],
        volumes=["/" + rand_text(rng) for _ in range(rng.randint(0, 2))], working_dir=rand_text(rng),
        labels={rand_text(rng) or "l": rand_text(rng) for _ in range(rng.randint(0, 3))},
        stop_signal=rng.choice(["", "SIGTERM", "9"]), args_escaped=rng.random() < 0.2,
        healthcheck=rng.choice([None, Healthcheck(("CMD", "true"), 10**9, 2 * 10**9, 0, 0, 3)]),
        on_build=[rand_text(rng)] if rng.random() < 0.2 else [], shell=rng.choice([None, ["/bin/sh", "-c"]]),
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_random_documents_fit_schemas_and_round_trip(seed):
    rng = random.Random(seed)
    m = rand_manifest(rng)
    schemas.validate(m.raw, schemas.MANIFEST)
    assert Manifest.parse(m.raw) == m
    idx = Index.build([m.descriptor(Platform("linux", "amd64")), rand_descriptor(rng, MediaType.OCI_MANIFEST)],
                      annotations={"x": rand_text(rng)})
    schemas.validate(idx.raw, schemas.INDEX)
    assert Index.parse(idx.raw) == idx
    for desc in (*m.layers, m.config):
        schemas.validate(desc.to_dict(), schemas.DESCRIPTOR)
    c = rand_config(rng)
    schemas.validate(c.raw, schemas.CONFIG)
    back = ImageConfig.parse(c.raw)
    assert back == c and back.raw == c.raw


def _mutate_value(rng: random.Random, obj):
    """Replace one value somewhere in a JSON tree with something of another shape."""
    weird = [None, True, -1, 1 << 70, 1.5, "", "x" * 300, [], {}, ["a", 1], {"a": None}, "sha256:../../x"]
    if isinstance(obj, dict) and obj:
        key = rng.choice(sorted(obj))
        if rng.random() < 0.5:
            obj[key] = rng.choice(weird)
        else:
            obj[key] = _mutate_value(rng, obj[key])
        return obj
    if isinstance(obj, list) and obj:
        i = rng.randrange(len(obj))
        obj[i] = _mutate_value(rng, obj[i]) if rng.random() < 0.5 else rng.choice(weird)
        return obj
    return rng.choice(weird)


@pytest.mark.parametrize("seed", SEEDS)
def test_mutated_documents_raise_only_invalid_document(seed):
    rng = random.Random(1000 + seed)
    docs = [rand_manifest(rng).raw, Index.build([rand_descriptor(rng, MediaType.OCI_MANIFEST)]).raw,
            rand_config(rng).raw]
    for raw in docs:
        for _ in range(30):
            body = _mutate_value(rng, json.loads(raw))
            data = json.dumps(body).encode()
            for parse in (lambda d: parse_document(d, None), ImageConfig.parse):
                try:
                    parse(data)
                except PybuildError as exc:
                    assert isinstance(exc, InvalidDocument), repr(exc)
                    assert "\n" not in str(exc)
            flipped = bytearray(raw)
            for _ in range(rng.randint(1, 4)):
                flipped[rng.randrange(len(flipped))] = rng.randrange(256)
            for parse in (lambda d: parse_document(d, None), ImageConfig.parse):
                try:
                    parse(bytes(flipped))
                except InvalidDocument:
                    pass
