"""``--format`` through the real ``pybuild`` command: Docker's placeholders, ``table`` headers,
``json`` lines, ``{{json .}}`` documents, and the one-line error of a bad template; ``info`` and
``version``."""

from __future__ import annotations

import json
import re

import pytest

from tests.lifecycle.conftest import wait_for


@pytest.fixture
def imported(pybuild, busybox_tar):
    image_id = pybuild("import", str(busybox_tar), "fmt/bb:1", "-c", 'CMD ["sh"]', "-c", "LABEL team=core",
                       check=True).stdout.strip()
    return image_id


def _bad(proc, what: str):
    assert proc.returncode == 1, proc
    assert proc.stdout == "" and proc.stderr.count("\n") == 1 and what in proc.stderr, proc.stderr


def test_images_history_inspect(pybuild, imported):
    table = pybuild("images", "--format", r"table {{.Repository}}\t{{.Tag}}\t{{.ID}}", check=True).stdout
    head, row = table.splitlines()
    assert re.fullmatch(r"REPOSITORY\s+TAG\s+IMAGE ID", head)
    assert row.split() == ["fmt/bb", "1", imported[7:19]]
    assert head.index("TAG") == row.index("1 ") and head.index("IMAGE ID") == row.index(imported[7:19])
    assert pybuild("images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}", check=True).stdout \
        .startswith("fmt/bb:1 1.")
    (line,) = pybuild("images", "--format", "json", check=True).stdout.splitlines()
    doc = json.loads(line)
    assert (doc["Repository"], doc["Tag"], doc["ID"]) == ("fmt/bb", "1", imported)
    assert doc["CreatedSince"].endswith("ago") and doc["VirtualSize"].endswith("MB")
    assert json.loads(pybuild("images", "--format", "{{json .}}", check=True).stdout) == doc

    out = pybuild("inspect", "-f", '{{.Id}} {{json .Config.Cmd}} {{index .Config.Labels "team"}} '
                  "{{.Os}}/{{.Architecture}} {{len .RootFS.Layers}}", "fmt/bb:1", check=True).stdout
    assert out == f'{imported} ["sh"] core linux/amd64 1\n'
    (whole,) = json.loads(pybuild("inspect", "--format", "json", "fmt/bb:1", check=True).stdout)
    assert whole["Id"] == imported                                 # "json": the plain document, as Docker
    cfg = json.loads(pybuild("inspect", "--format", "{{json .Config}}", "fmt/bb:1", check=True).stdout)
    assert cfg["Cmd"] == ["sh"] and cfg["Labels"] == {"team": "core"}
    ranged = pybuild("inspect", "-f", "{{range $k, $v := .Config.Labels}}{{$k}}={{$v | upper}}{{end}}",
                     "fmt/bb:1", check=True).stdout
    assert ranged == "team=CORE\n"

    hist = pybuild("history", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}", "fmt/bb:1", check=True).stdout
    assert hist.startswith(imported[7:19] + "|pybuild import ") and hist.rstrip().endswith("MB")
    head = pybuild("history", "--format", r"table {{.ID}}\t{{.CreatedBy}}", "fmt/bb:1", check=True).stdout
    assert re.match(r"IMAGE\s+CREATED BY\n", head)

    _bad(pybuild("images", "--format", "{{.Repository"), "template parsing error: template: :1: unclosed action")
    _bad(pybuild("images", "--format", "{{.Nope}}"), "can't evaluate field Nope")
    _bad(pybuild("inspect", "-f", "{{nofunc .Id}}", "fmt/bb:1"), 'function "nofunc" not defined')


def test_ps_stats_port_and_container_inspect(lifecycle):
    lifecycle.create("made", ["true"], labels={"com.example.team": "core"})
    cid = lifecycle.run("up", ["sleep", "1000"])
    wait_for(lambda: lifecycle.state("up").status == "running", what="up runs")
    pb = lifecycle.pybuild

    lines = pb("ps", "-a", "--format", 'table {{.Names}}\t{{.State}}\t{{.Label "com.example.team"}}',
               check=True).stdout.splitlines()
    assert re.fullmatch(r"NAMES\s+STATE\s+LABEL", lines[0])
    assert sorted(line.split() for line in lines[1:]) == [["made", "created", "core"], ["up", "running"]]
    running = pb("ps", "--format", "{{.ID}} {{.Command}} {{.Status}} {{.RunningFor}} {{.Networks}}",
                 check=True).stdout
    assert re.fullmatch(rf'{cid[:12]} "sleep 1000" Up \d+ seconds? \d+ seconds? ago none\n', running)
    assert pb("ps", "--no-trunc", "--format", "{{.ID}}", check=True).stdout == cid + "\n"
    rows = [json.loads(x) for x in pb("ps", "-a", "--format", "json", check=True).stdout.splitlines()]
    assert {r["Names"]: r["Labels"] for r in rows} == {"made": "com.example.team=core", "up": ""}
    for r in rows:
        assert {"ID", "Names", "Image", "Command", "CreatedAt", "Status", "State", "Ports", "Labels", "Mounts",
                "Networks", "RunningFor", "Size"} <= set(r)
    assert [json.loads(x)["ID"] for x in pb("ps", "--format", "{{json .}}", check=True).stdout.splitlines()] == [cid]

    assert pb("container", "inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.Name}}", "up",
              check=True).stdout == "running true /up\n"
    assert pb("inspect", "--format", "{{ .NetworkSettings.IPAddress }}|{{.HostConfig.Init}}", "up",
              check=True).stdout == "|false\n"
    assert json.loads(pb("inspect", "-f", "{{json .Config.Labels}}", "made", check=True).stdout) == \
        {"com.example.team": "core"}

    stats = pb("stats", "--no-stream", "--format", r"table {{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.PIDs}}",
               "up", check=True).stdout.splitlines()
    assert re.fullmatch(r"NAME\s+CPU %\s+MEM USAGE / LIMIT\s+PIDS", stats[0])
    assert re.fullmatch(r"up\s+\d+\.\d\d%\s+[\d.]+[KMG]?i?B / \S+\s+1", stats[1]), stats
    assert pb("port", "--format", "{{.PrivatePort}}", "up", check=True).stdout == ""
    _bad(pb("ps", "--format", "{{if .State}}x"), "unexpected EOF")


def test_info_and_version(pybuild, imported):
    doc = json.loads(pybuild("info", "--format", "{{json .}}", check=True).stdout)
    assert (doc["Containers"], doc["ContainersRunning"], doc["ContainersStopped"], doc["Images"]) == (0, 0, 0, 1)
    assert doc["DockerRootDir"] == str(pybuild.root) and doc["OSType"] == "linux" and doc["NCPU"] >= 1
    assert doc["CgroupVersion"] in ("1", "2") and doc["MemTotal"] > 0 and doc["KernelVersion"]
    assert isinstance(doc["SecurityOptions"], list) and doc["Driver"] == "overlay"
    assert json.loads(pybuild("system", "info", "-f", "{{json .}}", check=True).stdout).keys() == doc.keys()
    text = pybuild("info", check=True).stdout
    assert "Server:\n Containers: 0\n" in text and f" Docker Root Dir: {pybuild.root}\n" in text
    assert pybuild("info", "-f", "{{.Images}} {{.OSType}}", check=True).stdout == "1 linux\n"

    ver = json.loads(pybuild("version", "-f", "{{json .}}", check=True).stdout)
    assert ver["Client"]["Version"] == ver["Server"]["Version"] and ver["Client"]["Os"] == "linux"
    assert [c["Name"] for c in ver["Server"]["Components"]] == ["Engine", "pybuild-sandbox"]
    assert pybuild("version", "--format", "{{.Client.Version}}", check=True).stdout == ver["Client"]["Version"] + "\n"
    assert pybuild("version", check=True).stdout.startswith(f"Client:\n Version:           {ver['Client']['Version']}\n")
    _bad(pybuild("version", "-f", "{{.Client"), "template parsing error")


def test_volume_and_network_formats(pybuild):
    pybuild("volume", "create", "--label", "k=v", "data", check=True)
    lines = pybuild("volume", "ls", "--format", 'table {{.Name}}\t{{.Driver}}\t{{.Label "k"}}',
                    check=True).stdout.splitlines()
    assert [line.split() for line in lines] == [["VOLUME", "NAME", "DRIVER", "LABEL"], ["data", "local", "v"]]
    mp = pybuild("volume", "inspect", "-f", "{{.Mountpoint}}", "data", check=True).stdout.strip()
    assert mp.startswith(str(pybuild.root)) and mp.endswith("/_data")
    nets = pybuild("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}", check=True).stdout
    assert nets == "pybuild bridge local\n"
    subnet = pybuild("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", "pybuild",
                     check=True).stdout.strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+/\d+", subnet)
