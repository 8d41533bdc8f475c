"""Reference parsing and normalisation, following distribution/reference's own test tables."""

from __future__ import annotations

import pytest

from layers import Digest, InvalidReference, Reference

HEX = "0123456789abcdef" * 4
DIG = f"sha256:{HEX}"


@pytest.mark.parametrize(
    "text, full, familiar",
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("index.docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/library/busybox:x", "docker.io/library/busybox:x", "busybox:x"),
        ("user/app", "docker.io/user/app:latest", "user/app:latest"),
        ("user/library/app", "docker.io/user/library/app:latest", "user/library/app:latest"),
        ("docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"),
        ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
        ("localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest"),
        ("localhost:5000/x:v1", "localhost:5000/x:v1", "localhost:5000/x:v1"),
        ("127.0.0.1:5000/a/b/c:t", "127.0.0.1:5000/a/b/c:t", "127.0.0.1:5000/a/b/c:t"),
        ("harbor.example.com/team/app:1", "harbor.example.com/team/app:1", "harbor.example.com/team/app:1"),
        ("[::1]:5000/app", "[::1]:5000/app:latest", "[::1]:5000/app:latest"),
        ("Registry.Example/app", "Registry.Example/app:latest", "Registry.Example/app:latest"),
        (f"busybox@{DIG}", f"docker.io/library/busybox@{DIG}", f"busybox@{DIG}"),
        (f"busybox:1@{DIG}", f"docker.io/library/busybox:1@{DIG}", f"busybox:1@{DIG}"),
        ("a_b-c__d---e/f.g", "docker.io/a_b-c__d---e/f.g:latest", "a_b-c__d---e/f.g:latest"),
        ("a.b/c", "a.b/c:latest", "a.b/c:latest"),
        ("x:" + "T" * 128, "docker.io/library/x:" + "T" * 128, "x:" + "T" * 128),
        ("x:_a.b-C", "docker.io/library/x:_a.b-C", "x:_a.b-C"),
    ],
)
def test_parse_and_normalise(text, full, familiar):
    ref = Reference.parse(text)
    assert str(ref) == full
    assert ref.familiar == familiar
    assert Reference.parse(full) == ref  # normalisation is idempotent
    assert Reference.parse(str(ref)) == ref


def test_parts_and_api_host():
    ref = Reference.parse(f"localhost:5000/team/app:v1@{DIG}")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == ("localhost:5000", "team/app", "v1", Digest.parse(DIG))
    assert ref.api_host == "localhost:5000" and ref.identifier == DIG and ref.name == "localhost:5000/team/app"
    hub = Reference.parse("busybox")
    assert hub.api_host == "registry-1.docker.io" and hub.identifier == "latest"
    assert hub.with_tag("1").familiar == "busybox:1"
    assert hub.with_digest(Digest.parse(DIG)).identifier == DIG
    assert Reference.parse("busybox", default_tag=None).tag is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("Busybox", "must be lowercase"),
        ("user/App:1", "must be lowercase"),
        ("docker.io/Library/x", "must be lowercase"),
        ("a//b", "invalid repository name"),
        ("-a", "invalid repository name"),
        ("a-", "invalid repository name"),
        ("a___b", "invalid repository name"),
        ("a.-b", "invalid repository name"),
        ("a/", "invalid repository name"),
        ("/a", "invalid repository name"),
        (":tag", "repository name is empty"),
        ("x:", "invalid tag"),
        ("x:-a", "invalid tag"),
        ("x:.a", "invalid tag"),
        ("x:" + "t" * 129, "invalid tag"),
        ("x:t@g", "invalid"),
        ("x@sha256:abc", "64 lowercase hex"),
        ("x@sha256:" + HEX.upper(), "lowercase hex"),
        ("x@sha256:../../etc/passwd", "sha256"),
        ("x@md5:" + "a" * 32, "unsupported digest algorithm"),
        ("x@", "missing"),
        ("a b", "white space"),
        ("a\nb", "white space"),
        (HEX, "image id"),
        ("a" * 256, "more than 255"),
        ("ex ample.com/a", "white space"),
        ("exa_mple.com/a", "invalid registry"),
        ("-bad.com/a", "invalid registry"),
        ("host:port/a", "invalid registry"),
        ("x:tag:tag", "invalid"),
        ("ünïcode", "invalid repository name"),
    ],
)
def test_refused(text, message):
    with pytest.raises(InvalidReference, match=message) as err:
        Reference.parse(text)
    assert "\n" not in str(err.value)


def test_name_length_counts_the_whole_name():
    ok = "a/" * 121 + "bc"  # 244 characters, 254 normalised ("docker.io/" + name), as distribution counts
    assert Reference.parse(ok).repository == ok
    with pytest.raises(InvalidReference, match="255"):
        Reference.parse("a/" * 122 + "bc")  # 246 as written, 256 normalised
    with pytest.raises(InvalidReference, match="255"):
        Reference.parse("a/" * 127 + "bc")


def test_constructor_validates_too():
    with pytest.raises(InvalidReference):
        Reference("docker.io", "Upper", "latest")
    with pytest.raises(InvalidReference):
        Reference("docker.io", "library/x", "-bad")
    assert Reference("docker.io", "library/x", "1").familiar == "x:1"
