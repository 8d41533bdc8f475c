"""Rootless fixtures: real non-root users with subordinate ranges and pybuild installed for them
(:mod:`tests.rootless.support` makes, runs as and removes them).

- ``rootless_venv`` (session): the one venv every rootless test user runs ``pybuild`` from
  (:func:`~tests.rootless.support.install_pybuild`: one pip install of this checkout per session).
- ``rootless_users`` (session): ``pbrl-a`` and ``pbrl-b`` with subordinate uid/gid ranges (useradd
  allocates them), ``pbrl-single`` with none. At the end every process of theirs (pause processes,
  leftover containers) is killed and the users are removed. ``test_rootless_net.py`` makes users of its
  own (``pbrn-*``), so it can run while these are deleted and remade.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.rootless.support import BASE, install_pybuild, make_user, remove_users

USERS = {"pbrl-a": "2000000-2065535", "pbrl-b": "2000000-2065535", "pbrl-single": None}


@pytest.fixture(scope="session")
def rootless_venv() -> str:
    if not os.path.exists("/usr/bin/python3") or not shutil.which("newuidmap"):
        pytest.fail("rootless tests need /usr/bin/python3 and newuidmap (scripts/install.sh installs uidmap)")
    return install_pybuild()


@pytest.fixture(scope="session")
def rootless_users():
    made = {}
    try:
        for name, subids in USERS.items():
            made[name] = make_user(name, subids)
        yield made
    finally:
        remove_users(made.values())
        for u in made.values():
            shutil.rmtree(BASE / f"xdg-{u.uid}", ignore_errors=True)
        for name in ("ctx", "tars"):  # the venv and its source copy stay: an install cache for the next run
            shutil.rmtree(BASE / name, ignore_errors=True)
