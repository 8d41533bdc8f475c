"""Container status words and documents (``pybuild.views.containers``) from the runner's values."""

from __future__ import annotations

from runner import records as r
from pybuild.views.containers import human_ago, human_status, inspect_document, ports_text
from runner.details import ContainerDetails, MountPoint
from runner.ocispec import Process, Root, Spec


def test_status_words_as_docker_ps_shows_them():
    now = 10_000.0
    assert human_status(r.ContainerState(status=r.RUNNING, started_at=now - 180), now) == "Up 3 minutes"
    assert human_status(r.ContainerState(status=r.PAUSED, started_at=now - 1), now) == "Up 1 second (Paused)"
    assert human_status(r.ContainerState(status=r.EXITED, exit_code=1, finished_at=now - 7200), now) == \
        "Exited (1) 2 hours ago"
    assert human_status(r.ContainerState(status=r.RESTARTING, exit_code=3, finished_at=now - 2), now) == \
        "Restarting (3) 2 seconds ago"
    assert human_status(r.ContainerState(status=r.CREATED), now) == "Created"
    assert human_ago(now - 86400 * 2, now) == "2 days"


def test_inspect_document_from_details():
    cfg = r.ContainerConfig(id="a" * 64, name="web", image="busybox", image_id="sha256:" + "b" * 64,
                            spec=Spec("1.0.2", Process(("sh", "-c", "true"), env=("A=1",)), Root("/")), created=0.0,
                            restart_policy="on-failure:3", ports=(r.PublishedPort(80, "tcp", "0.0.0.0", 8080),),
                            network=r.NetworkAttachment(mode="net1", container_id="a" * 64, network="net1",
                                                        ip="10.1.0.2", etc_files=(("hosts", "/e/hosts"),)))
    d = ContainerDetails(config=cfg, state=r.ContainerState(status=r.RESTARTING, exit_code=1), log_path="/l",
                         mounts=(MountPoint("volume", "/v/_data", "/data", ("rbind",), True, "v"),),
                         hostname="web", privileged=False, seccomp="default",
                         network_id="n" * 64, endpoint_id="e" * 64)
    doc = inspect_document(d)
    assert doc["Name"] == "/web" and doc["Path"] == "sh" and doc["Args"] == ["-c", "true"]
    assert doc["State"]["Status"] == "restarting" and doc["State"]["Restarting"] is True
    assert doc["State"]["Running"] is False and doc["State"]["Pid"] == 0
    assert doc["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert doc["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}
    assert doc["HostConfig"]["SecurityOpt"] == ["seccomp=default"]
    assert doc["NetworkSettings"]["IPAddress"] == "10.1.0.2"
    assert doc["NetworkSettings"]["Networks"]["net1"]["etc_files"] == {"hosts": "/e/hosts"}
    net1 = doc["NetworkSettings"]["Networks"]["net1"]
    assert (net1["IPAddress"], net1["NetworkID"], net1["EndpointID"]) == ("10.1.0.2", "n" * 64, "e" * 64)
    assert net1["DNSNames"] == ["web", "a" * 12]
    assert ports_text(cfg.ports) == "0.0.0.0:8080->80/tcp"
    assert doc["Mounts"] == [{"Type": "volume", "Source": "/v/_data", "Destination": "/data",
                              "Options": ["rbind"], "RW": True, "Name": "v"}]
