"""The cacheconfig.v0 model and the --cache-to/--cache-from spellings (pure units)."""

from __future__ import annotations

import json

import pytest

from builder.errors import BuildError
from builder.remotecache.exporter import make_cache
from builder.remotecache.importer import entries_of
from builder.remotecache.model import CacheConfig
from builder.remotecache.records import Recorder, StepRecord, base_key
from builder.remotecache.spec import parse_cache_spec
from layers.descriptor import Descriptor
from layers.digest import Digest

L = [Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", Digest.from_bytes(bytes([i])), 10 + i) for i in range(3)]
D = [Digest.from_bytes(b"diff" + bytes([i])) for i in range(3)]


def _records() -> list[StepRecord]:
    b = base_key("x")
    k1, k2, k3 = ("1" * 64), ("2" * 64), ("3" * 64)
    return [StepRecord(b, "", L[:1], D[:1], "", 0),
            StepRecord(k1, b, L[:2], D[:2], "2024-01-01T00:00:00Z", 0),
            StepRecord(k2, k1, L[:2], D[:2], "2024-01-01T00:00:01Z", 0),  # changed nothing
            StepRecord(k3, k2, L[:3], D[:3], "2024-01-01T00:00:02Z", 0)]


def test_round_trip_maps_keys_to_their_own_layers() -> None:
    export = make_cache(_records())
    config = CacheConfig.parse(export.config.raw)
    assert config == export.config and len(config.layers) == 3
    body = json.loads(config.raw)
    assert body["records"][1]["layers"][0]["layer"] == 1  # BuildKit's JSON: results under "layers"
    entries = entries_of(config, {d.digest: d for d in export.layers}, "test")
    assert set(entries) == {"1" * 64, "2" * 64, "3" * 64}  # the base record is not a step
    assert entries["1" * 64].layer.digest == L[1].digest and entries["1" * 64].diff_id == D[1]
    assert entries["2" * 64].layer is None
    assert entries["3" * 64].layer.digest == L[2].digest and entries["3" * 64].created == "2024-01-01T00:00:02Z"
    assert dict(export.layers[0].annotations)["containerd.io/uncompressed"] == str(D[0])


def test_a_blob_missing_from_the_manifest_drops_its_records() -> None:
    export = make_cache(_records())
    blobs = {d.digest: d for d in export.layers if d.digest != L[2].digest}
    assert set(entries_of(export.config, blobs, "t")) == {"1" * 64, "2" * 64}


@pytest.mark.parametrize("doc,where", [
    (b"[]", "document"),
    (b'{"layers":[{"blob":"sha256:' + b"0" * 64 + b'","parent":0,"annotations":{"mediaType":"a/b","diffID":"sha256:'
     + b"0" * 64 + b'","size":1}}]}', "layers[0].parent"),
    (b'{"records":[{"digest":"sha256:' + b"1" * 64 + b'","layers":[{"layer":3}]}]}', "records[0].layers"),
    (b'{"records":[{"digest":"sha256:' + b"1" * 64 + b'","inputs":[[{"link":0}]]}]}', "records[0].inputs"),
    (b'{"records":[{"digest":"md5:x"}]}', "records[0].digest"),
])
def test_bad_configs_name_the_field(doc: bytes, where: str) -> None:
    with pytest.raises(BuildError, match=f"cacheconfig.v0\\) {where.replace('[', '.').replace(']', '.')}"):
        CacheConfig.parse(doc)


def test_recorder_min_keeps_parents() -> None:
    rec = Recorder()
    for r in _records():
        rec.add(r)
    rec.add(StepRecord("4" * 64, base_key("y"), L[:1], D[:1], "", 1))
    assert len(rec.records(frozenset({0}))) == 4 and len(rec.records()) == 5


@pytest.mark.parametrize("text,direction,want", [
    ("type=registry,ref=h.io/c/app:cache,mode=max,compression=zstd,ignore-error=true", "to",
     ("registry", "h.io/c/app:cache", "max", "zstd", True)),
    ("type=registry,ref=h.io/c/app:cache", "to", ("registry", "h.io/c/app:cache", "min", "", False)),
    ("h.io/team/app:1", "from", ("registry", "h.io/team/app:1", "min", "", True)),
    ("type=registry,ref=h.io/c/app:cache,ignore-error=false", "from", ("registry", "h.io/c/app:cache", "min", "", False)),
    ("type=inline", "to", ("inline", "", "min", "", False)),
])
def test_specs(text: str, direction: str, want) -> None:
    s = parse_cache_spec(text, direction)
    assert (s.type, s.ref, s.mode, s.compression, s.ignore_error) == want


@pytest.mark.parametrize("text,direction,msg", [
    ("type=s3,ref=x", "to", "type must be registry, inline or local"),
    ("type=registry", "to", "needs ref=REF"),
    ("type=registry,ref=a:b,mode=all", "to", "mode must be min or max"),
    ("type=registry,ref=a,compression=lz4", "to", "compression must be gzip or zstd"),
    ("type=local,src=/x", "to", "does not take src"),
    ("type=local", "from", "needs src=DIR"),
    ("type=inline,mode=max", "to", "mode=min"),
    ("type=registry,ref=a,oci-mediatypes=false", "to", "not supported"),
    ("type=registry,ref=a,ignore-error=maybe", "to", "true or false"),
    ("type=registry,ref=a,,", "to", "is not KEY=VALUE"),
])
def test_bad_specs_are_refused(text: str, direction: str, msg: str) -> None:
    with pytest.raises(BuildError, match=msg):
        parse_cache_spec(text, direction)
