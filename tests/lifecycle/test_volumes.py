"""Named volumes through the real ``pybuild``: made at first use or by ``volume create``, seeded once
from the image, kept across containers, refused for removal while any container refers to them."""

from __future__ import annotations

import json
import os


def test_a_named_volume_is_seeded_once_kept_and_guarded(pybuild, image):
    # made at first use, seeded with what the image has at the path
    out = pybuild("run", "--rm", "-v", "conf:/etc", image, "sh", "-c",
                  "cat /etc/passwd | head -1; echo mine > /etc/added; rm /etc/group", check=True).stdout
    assert out.startswith("root:")
    assert pybuild("volume", "ls", "-q", check=True).stdout.split() == ["conf"]
    # a second container sees the first one's changes, and the seed is not repeated
    out = pybuild("run", "--rm", "-v", "conf:/etc:ro", image, "sh", "-c",
                  "cat /etc/added; test -e /etc/group && echo group-back; touch /etc/x 2>/dev/null || echo ro",
                  check=True).stdout
    assert out.split() == ["mine", "ro"]
    # mounted at another path of another image layout: the data is the volume's, not re-seeded
    assert pybuild("run", "--rm", "-v", "conf:/mnt", image, "cat", "/mnt/added", check=True).stdout == "mine\n"
    doc = json.loads(pybuild("volume", "inspect", "conf", check=True).stdout)[0]
    assert doc["Name"] == "conf" and doc["Driver"] == "local" and doc["Mountpoint"].endswith("/volumes/conf/_data")
    # in use by a container, running or not: refused; rm -v of the container keeps a named volume
    pybuild("create", "--name", "holder", "-v", "conf:/data", image, "true", check=True)
    mounts = json.loads(pybuild("container", "inspect", "holder", check=True).stdout)[0]["Mounts"]
    assert [(m["Type"], m.get("Name"), m["Destination"]) for m in mounts] == [("volume", "conf", "/data")]
    busy = pybuild("volume", "rm", "conf")
    assert busy.returncode == 1 and "volume conf: in use by container holder" in busy.stderr
    pybuild("rm", "-v", "holder", check=True)
    assert pybuild("volume", "ls", "-q", check=True).stdout.split() == ["conf"]
    pybuild("volume", "rm", "conf", check=True)
    assert pybuild("volume", "ls", "-q", check=True).stdout.strip() == ""
    assert not os.path.exists(pybuild.root / "volumes" / "conf")


def test_volume_commands_and_bad_names(pybuild, image):
    name = pybuild("volume", "create", check=True).stdout.strip()
    assert len(name) == 64
    assert pybuild("volume", "create", "--label", "team=web", "keep", check=True).stdout == "keep\n"
    assert json.loads(pybuild("volume", "inspect", "keep", check=True).stdout)[0]["Labels"] == {"team": "web"}
    dup = pybuild("volume", "create", "keep")
    assert dup.returncode != 0 and dup.stderr.strip() == "pybuild: volume keep: already exists"
    bad = pybuild("run", "--rm", "-v", "no/such:/x", image, "true")
    assert bad.returncode == 125 and "-v 'no/such:/x': volume name 'no/such'" in bad.stderr
    rel = pybuild("run", "--rm", "-v", "keep:relative", image, "true")
    assert rel.returncode == 125 and "the container path must be absolute" in rel.stderr
    missing = pybuild("volume", "rm", "nosuch")
    assert missing.returncode == 1 and "no such volume: nosuch" in missing.stderr
    assert pybuild("volume", "rm", "-f", "nosuch").returncode == 0
    pybuild("create", "--name", "user", "-v", "keep:/data", image, "true", check=True)
    rows = {json.loads(line)["Type"]: json.loads(line) for line in
            pybuild("system", "df", "--format", "json", check=True).stdout.splitlines()}
    assert (rows["Local Volumes"]["TotalCount"], rows["Local Volumes"]["Active"]) == (2, 1)
    out = pybuild("volume", "prune", "-f", check=True).stdout
    assert f"Deleted Volume: {name}" in out and "keep" not in out and "Total volumes removed: 1" in out
    assert pybuild("volume", "ls", "-q", check=True).stdout.split() == ["keep"]
