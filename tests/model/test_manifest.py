"""Manifest and index parsing/building: round trips, schema conformance, hostile documents."""

from __future__ import annotations

import json

import pytest

from layers import Descriptor, Digest, Index, InvalidDocument, InvalidInput, Manifest, MediaType, NotFound, Platform, parse_document
from layers.jsonutil import MAX_DOCUMENT_SIZE

from . import schemas

CFG = Descriptor(MediaType.OCI_CONFIG, Digest.from_bytes(b"{}"), 2)
LAYER = Descriptor(MediaType.OCI_LAYER_GZIP, Digest.from_bytes(b"layer"), 5,
                   annotations=(("org.opencontainers.image.title", "l"),))
HEX = "a" * 64


def manifest_body(**over):
    body = {
        "schemaVersion": 2,
        "mediaType": MediaType.OCI_MANIFEST,
        "config": CFG.to_dict(),
        "layers": [LAYER.to_dict()],
    }
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def dumps(body) -> bytes:
    return json.dumps(body).encode()


# -- building -----------------------------------------------------------------------------------


def test_build_oci_is_canonical_and_valid():
    subject = Descriptor(MediaType.OCI_MANIFEST, Digest.from_bytes(b"s"), 1)
    m = Manifest.build(CFG, [LAYER], annotations={"b": "2", "a": "1"}, subject=subject,
                       artifact_type="application/vnd.example+json")
    assert m.digest == Digest.from_bytes(m.raw)
    assert b" " not in m.raw and m.raw == json.dumps(json.loads(m.raw), separators=(",", ":"), sort_keys=True).encode()
    schemas.validate(m.raw, schemas.MANIFEST)
    again = Manifest.parse(m.raw)
    assert again == m
    assert again.annotation_map == {"a": "1", "b": "2"} and again.subject == subject
    assert m.descriptor().size == len(m.raw)


def test_build_docker_schema2():
    cfg = Descriptor(MediaType.DOCKER_CONFIG, CFG.digest, 2)
    layer = Descriptor(MediaType.DOCKER_LAYER_GZIP, LAYER.digest, 5)
    m = Manifest.build(cfg, [layer], docker=True)
    body = json.loads(m.raw)
    assert body["mediaType"] == MediaType.DOCKER_MANIFEST and body["schemaVersion"] == 2
    assert m.is_docker and Manifest.parse(m.raw, MediaType.DOCKER_MANIFEST) == m
    schemas.validate(m.raw, schemas.MANIFEST)
    with pytest.raises(InvalidInput, match="Docker schema2"):
        Manifest.build(cfg, [layer], docker=True, annotations={"a": "b"})
    with pytest.raises(InvalidInput, match="config"):
        Manifest.build(CFG, [layer], docker=True)
    with pytest.raises(InvalidInput, match="layer 0 .*tar\\+gzip"):
        Manifest.build(cfg, [LAYER], docker=True)


def test_build_index_and_docker_list():
    m = Manifest.build(CFG, [LAYER])
    amd = m.descriptor(Platform("linux", "amd64"))
    arm = Descriptor(MediaType.OCI_MANIFEST, Digest.from_bytes(b"arm"), 3, platform=Platform("linux", "arm", "v7"))
    idx = Index.build([amd, arm], annotations={"x": "y"})
    schemas.validate(idx.raw, schemas.INDEX)
    assert Index.parse(idx.raw) == idx
    docker = Index.build([amd, arm], docker=True)
    assert docker.media_type == MediaType.DOCKER_MANIFEST_LIST
    schemas.validate(docker.raw, schemas.INDEX)
    with pytest.raises(Exception, match="platform"):
        Index.build([Descriptor(MediaType.OCI_MANIFEST, CFG.digest, 2)], docker=True)


# -- parsing keeps the raw bytes ------------------------------------------------------------------


def test_digest_is_over_raw_bytes_not_a_reserialisation():
    raw = json.dumps(manifest_body(), indent=3).encode() + b"\n"
    m = Manifest.parse(raw)
    assert m.raw == raw and m.digest == Digest.from_bytes(raw)
    assert m.digest != Manifest.build(CFG, [LAYER]).digest


def test_unknown_fields_are_ignored_and_kept_in_raw():
    raw = dumps(manifest_body(future={"x": [1, 2]}))
    m = Manifest.parse(raw)
    assert m.to_dict()["future"] == {"x": [1, 2]}


def test_media_type_may_be_omitted_in_oci():
    m = Manifest.parse(dumps(manifest_body(mediaType=None)))
    assert m.media_type == MediaType.OCI_MANIFEST
    assert Manifest.parse(dumps(manifest_body(mediaType=None)), MediaType.DOCKER_MANIFEST).is_docker


def test_content_type_parameters_and_generic_types():
    raw = dumps(manifest_body())
    assert Manifest.parse(raw, MediaType.OCI_MANIFEST + "; charset=utf-8").media_type == MediaType.OCI_MANIFEST
    assert Manifest.parse(raw, "application/json").media_type == MediaType.OCI_MANIFEST


def test_parse_document_dispatches():
    m = Manifest.build(CFG, [LAYER])
    idx = Index.build([m.descriptor(Platform("linux", "amd64"))])
    assert isinstance(parse_document(m.raw, None), Manifest)
    assert isinstance(parse_document(idx.raw, MediaType.OCI_INDEX), Index)
    body = json.loads(idx.raw)
    del body["mediaType"]
    assert isinstance(parse_document(dumps(body), None), Index)


# -- hostile and malformed documents --------------------------------------------------------------


def test_refuses_index_and_manifest_in_one_document_cve_2021_41190():
    body = manifest_body(manifests=[LAYER.to_dict()])
    for content_type in (None, MediaType.OCI_MANIFEST, MediaType.OCI_INDEX):
        with pytest.raises(InvalidDocument, match="both an index and a manifest"):
            parse_document(dumps(body), content_type)
        with pytest.raises(InvalidDocument):
            Manifest.parse(dumps(body), content_type)
        with pytest.raises(InvalidDocument):
            Index.parse(dumps(body), content_type)
    # an index that carries only 'config' or only 'layers' is refused as well
    for key in ("config", "layers"):
        bad = {"schemaVersion": 2, "mediaType": MediaType.OCI_INDEX, "manifests": [], key: []}
        with pytest.raises(InvalidDocument):
            Index.parse(dumps(bad))


def test_refuses_body_media_type_that_disagrees_with_content_type():
    raw = dumps(manifest_body())
    with pytest.raises(InvalidDocument, match="content type") as err:
        Manifest.parse(raw, MediaType.DOCKER_MANIFEST)
    assert err.value.field == "mediaType"
    with pytest.raises(InvalidDocument, match="content type"):
        parse_document(raw, MediaType.OCI_INDEX)


def test_refuses_an_index_given_as_a_manifest_and_back():
    idx = Index.build([])
    with pytest.raises(InvalidDocument, match="not an image manifest"):
        Manifest.parse(idx.raw)
    with pytest.raises(InvalidDocument, match="not an index"):
        Index.parse(Manifest.build(CFG, [LAYER]).raw)


@pytest.mark.parametrize(
    "over, field, reason",
    [
        ({"schemaVersion": 3}, "schemaVersion", "must be 2"),
        ({"schemaVersion": "2"}, "schemaVersion", "must be int"),
        ({"schemaVersion": True}, "schemaVersion", "must be int"),
        ({"schemaVersion": None}, "schemaVersion", "is required"),
        ({"config": None}, "config", "is required"),
        ({"config": []}, "config", "must be dict"),
        ({"layers": {}}, "layers", "must be list"),
        ({"layers": [{"mediaType": "a/b", "size": 1, "digest": "sha256:../../x"}]}, "layers[0].digest", "sha256"),
        ({"layers": [{"mediaType": "a/b", "size": 1, "digest": "sha256:" + "A" * 64}]}, "layers[0].digest", "lowercase"),
        ({"layers": [{"mediaType": "a/b", "size": 1, "digest": "md5:" + "a" * 32}]}, "layers[0].digest", "unsupported"),
        ({"layers": [{"mediaType": "a/b", "size": -1, "digest": "sha256:" + HEX}]}, "layers[0].size", "between 0"),
        ({"layers": [{"mediaType": "a/b", "size": 1 << 63, "digest": "sha256:" + HEX}]}, "layers[0].size", "2**63"),
        ({"layers": [{"mediaType": "a/b", "size": 1.5, "digest": "sha256:" + HEX}]}, "layers[0].size", "must be int"),
        ({"layers": [{"mediaType": "a/b", "size": True, "digest": "sha256:" + HEX}]}, "layers[0].size", "must be int"),
        ({"layers": [{"mediaType": "a b\r\nX: y", "size": 1, "digest": "sha256:" + HEX}]},
         "layers[0].mediaType", "not a media type"),
        ({"layers": [{"mediaType": "a/b", "size": 1}]}, "layers[0].digest", "is required"),
        ({"layers": ["x"]}, "layers[0]", "must be an object"),
        ({"layers": [dict(LAYER.to_dict(), urls="http://x")]}, "layers[0].urls", "list of strings"),
        ({"layers": [dict(LAYER.to_dict(), annotations={"a": 1})]}, "layers[0].annotations", "strings"),
        ({"layers": [dict(LAYER.to_dict(), platform={"os": "linux"})]}, "layers[0].platform.architecture", "required"),
        ({"annotations": ["a"]}, "annotations", "must be an object"),
        ({"annotations": {"a": None}}, "annotations.a", "must be a string"),
        ({"mediaType": 7}, "mediaType", "must be a string"),
        ({"mediaType": "application/vnd.oci.artifact.manifest.v1+json"}, "mediaType", "not a supported"),
        ({"artifactType": "not a type"}, "artifactType", "not a media type"),
        ({"subject": {"mediaType": "a/b"}}, "subject.digest", "is required"),
    ],
)
def test_malformed_fields_are_named(over, field, reason):
    with pytest.raises(InvalidDocument) as err:
        Manifest.parse(dumps(manifest_body(**over)))
    assert err.value.field == field, str(err.value)
    assert reason in str(err.value)
    assert "\n" not in str(err.value)


def test_schema1_is_refused_clearly():
    body = {"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": []}
    with pytest.raises(InvalidDocument, match="schema 1"):
        parse_document(dumps(body), "application/vnd.docker.distribution.manifest.v1+prettyjws")
    with pytest.raises(InvalidDocument, match="schema 1"):
        parse_document(dumps(body), None)


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"", "not JSON"),
        (b"[]", "JSON object"),
        (b'"x"', "JSON object"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"schemaVersion": NaN}', "NaN"),
        (b'{"schemaVersion": Infinity}', "Infinity"),
        (b'{"a": 1} trailing', "not JSON"),
        (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
        (b'{"schemaVersion": 2, "schemaVersion": 2}', "appears twice"),
    ],
)
def test_hostile_bytes(raw, reason):
    with pytest.raises(InvalidDocument, match=reason):
        parse_document(raw, None)


def test_duplicate_keys_that_could_hide_layers_are_refused():
    # Two parsers could see different layers behind one digest: refuse, do not pick one.
    raw = dumps(manifest_body())[:-1] + b', "layers": []}'
    with pytest.raises(InvalidDocument, match="layers.*twice"):
        Manifest.parse(raw)


def test_oversized_document_refused_before_parsing():
    raw = b'{"x":"' + b"a" * MAX_DOCUMENT_SIZE + b'"}'
    with pytest.raises(InvalidDocument, match="more than"):
        Manifest.parse(raw)


def test_values_are_frozen():
    m = Manifest.build(CFG, [LAYER])
    with pytest.raises(AttributeError):
        m.layers = ()  # type: ignore[misc]
    assert hash(m.config) == hash(Descriptor.from_dict(CFG.to_dict()))


# -- platform selection --------------------------------------------------------------------------


def _entry(name: str, platform: Platform | None, annotations=()) -> Descriptor:
    return Descriptor(MediaType.OCI_MANIFEST, Digest.from_bytes(name.encode()), 10, platform=platform,
                      annotations=tuple(annotations))


def test_select_platform():
    amd = _entry("amd", Platform("linux", "amd64"))
    arm6 = _entry("arm6", Platform("linux", "arm", "v6"))
    arm7 = _entry("arm7", Platform("linux", "arm", "v7"))
    arm64 = _entry("arm64", Platform("linux", "arm64", "v8"))
    att = _entry("att", Platform("unknown", "unknown"), [("vnd.docker.reference.type", "attestation-manifest")])
    idx = Index.build([att, arm6, arm7, amd, arm64])
    assert idx.select(Platform("linux", "amd64")) == amd
    assert idx.select(Platform.parse("linux/x86_64")) == amd
    assert idx.select(Platform("linux", "arm", "v7")) == arm7
    assert idx.select(Platform("linux", "arm64")) == arm64
    assert att not in idx.images()
    with pytest.raises(NotFound, match=r"linux/s390x.*available: linux/amd64, linux/arm/v6"):
        idx.select(Platform("linux", "s390x"))
    with pytest.raises(NotFound):
        idx.select(Platform("windows", "amd64"))


def test_select_prefers_entry_without_variant_over_other_variant():
    plain = _entry("plain", Platform("linux", "arm64"))
    v9 = _entry("v9", Platform("linux", "arm64", "v9"))
    assert Index.build([v9, plain]).select(Platform("linux", "arm64")) == plain


def test_docker_manifest_list_requires_platforms():
    body = {"schemaVersion": 2, "mediaType": MediaType.DOCKER_MANIFEST_LIST,
            "manifests": [{"mediaType": MediaType.DOCKER_MANIFEST, "digest": "sha256:" + HEX, "size": 3}]}
    with pytest.raises(InvalidDocument) as err:
        Index.parse(dumps(body))
    assert err.value.field == "manifests[0].platform"


def test_select_normalises_variants_as_containerd():
    arm64 = _entry("arm64", Platform("linux", "arm64"))
    arm = _entry("arm", Platform("linux", "arm"))
    idx = Index.build([arm64, arm])
    assert idx.select(Platform.parse("linux/arm64/v8")) == arm64
    assert idx.select(Platform.parse("linux/aarch64")) == arm64
    assert idx.select(Platform.parse("linux/arm/v7")) == arm
    with pytest.raises(NotFound):
        idx.select(Platform.parse("linux/arm/v6"))
