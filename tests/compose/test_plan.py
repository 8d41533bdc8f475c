"""compose.plan: the dependency graph, order, selection, names, labels and the config hash (pure)."""

from __future__ import annotations

import dataclasses

import pytest

from compose.model import Dependency, Project, Service
from compose.plan import (DependencyCycle, NoSuchService, config_hash, container_name, down_order, image_name,
                          labels, levels, parse_scale, plan_services, replicas, select, up_order)
from layers.errors import InvalidInput


def _project(*services: Service, disabled=()) -> Project:
    return Project(name="demo", working_dir="/srv/demo", services=services, files=("/srv/demo/compose.yaml",),
                   disabled=tuple(disabled))


def _svc(name: str, *deps: str, **kw) -> Service:
    return Service(name=name, image="busybox:latest", depends_on=tuple(Dependency(d) for d in deps), **kw)


THREE_TIER = _project(_svc("web", "app"), _svc("app", "db", "migrate"), _svc("migrate", "db"), _svc("db"),
                      _svc("cache"))


def test_levels_put_dependencies_first_and_independent_services_together() -> None:
    assert levels(THREE_TIER) == [("db", "cache"), ("migrate",), ("app",), ("web",)]
    assert up_order(THREE_TIER) == ("db", "cache", "migrate", "app", "web")
    assert down_order(THREE_TIER) == ("web", "app", "migrate", "cache", "db")


def test_select_adds_dependencies_unless_no_deps() -> None:
    assert select(THREE_TIER, ("app",)) == ("app", "migrate", "db")
    assert select(THREE_TIER, ("app",), with_deps=False) == ("app",)
    assert select(THREE_TIER) == ("web", "app", "migrate", "db", "cache")
    assert levels(THREE_TIER, ("web", "db")) == [("web", "db")]      # app not selected: nothing between them


def test_unknown_or_disabled_service_is_named() -> None:
    p = _project(_svc("a"), disabled=("debug",))
    with pytest.raises(NoSuchService, match="no such service: nope"):
        select(p, ("nope",))
    with pytest.raises(NoSuchService, match="debug.*profile is not active"):
        select(p, ("debug",))


@pytest.mark.parametrize("services, cycle", [
    ((_svc("a", "b"), _svc("b", "a")), "a -> b -> a"),
    ((_svc("a", "b"), _svc("b", "c"), _svc("c", "a")), "a -> b -> c -> a"),
    ((_svc("x"), _svc("a", "a")), "a -> a"),
])
def test_cycles_are_refused_naming_the_cycle(services, cycle) -> None:
    with pytest.raises(DependencyCycle) as err:
        up_order(_project(*services))
    assert cycle in str(err.value)
    assert err.value.exit_code != 0


def test_names_follow_compose_v2() -> None:
    web = _svc("web")
    assert container_name(THREE_TIER, web, 2) == "demo-web-2"
    assert container_name(THREE_TIER, dataclasses.replace(web, container_name="frontend"), 1) == "frontend"
    assert image_name(THREE_TIER, Service(name="app")) == "demo-app"
    assert image_name(THREE_TIER, web) == "busybox:latest"


def test_labels_carry_project_service_number_hash_and_win_over_the_services() -> None:
    svc = _svc("web", labels=(("team", "x"), ("com.docker.compose.project", "spoofed")))
    got = dict(labels(THREE_TIER, svc, 3, "abc", oneoff=False))
    assert got["team"] == "x"
    assert got["com.docker.compose.project"] == "demo"
    assert got["com.docker.compose.service"] == "web"
    assert got["com.docker.compose.container-number"] == "3"
    assert got["com.docker.compose.config-hash"] == "abc"
    assert got["com.docker.compose.oneoff"] == "False"
    assert got["com.docker.compose.project.working_dir"] == "/srv/demo"
    assert got["com.docker.compose.project.config_files"] == "/srv/demo/compose.yaml"
    assert dict(labels(THREE_TIER, svc, 1, "abc", oneoff=True))["com.docker.compose.oneoff"] == "True"


def test_config_hash_changes_with_the_container_config_only() -> None:
    base = _svc("web", "db", command=("sleep", "1"))
    h = config_hash(base, "sha256:1")
    assert len(h) == 64 and h == config_hash(base, "sha256:1")            # stable
    assert config_hash(dataclasses.replace(base, command=("sleep", "2")), "sha256:1") != h
    assert config_hash(dataclasses.replace(base, environment=(("A", "1"),)), "sha256:1") != h
    assert config_hash(base, "sha256:2") != h                                # a new image recreates
    # scale, dependencies and profiles do not change a container
    assert config_hash(dataclasses.replace(base, replicas=5), "sha256:1") == h
    assert config_hash(dataclasses.replace(base, depends_on=()), "sha256:1") == h
    assert config_hash(dataclasses.replace(base, profiles=("x",)), "sha256:1") == h


def test_scale_parsing_and_replicas() -> None:
    p = _project(_svc("web", replicas=2), _svc("one", container_name="fixed"))
    assert parse_scale(("web=4",), p) == {"web": 4}
    assert replicas(p.service("web"), {}) == 2
    assert replicas(p.service("web"), {"web": 0}) == 0
    for bad in ("web", "web=x", "web=-1"):
        with pytest.raises(InvalidInput, match="--scale"):
            parse_scale((bad,), p)
    with pytest.raises(NoSuchService):
        parse_scale(("nope=2",), p)
    with pytest.raises(InvalidInput, match="container_name"):
        replicas(p.service("one"), {"one": 2})
    plans = plan_services(p, ("web", "one"), {"web": 3}, {"web": "sha256:1"})
    assert [(x.service.name, x.replicas, x.image) for x in plans] == [("web", 3, "busybox:latest"),
                                                                       ("one", 1, "busybox:latest")]
