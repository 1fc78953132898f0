"""Settings for the whole test run.

scripts/test.sh runs pytest with two xdist workers (--dist loadgroup): most of a rig test is
waiting for pods and processes, so two share the two cores well. Every test file is one group,
run by one worker (its module fixtures converge once); each molecule scenario is a group of its
own; the files that share Keycloak are one group. Each worker drives a simulated cluster of its
own (CTI_RIG_CLUSTER, CTI_RIG_STATE), so neither sees the other's objects; the first keeps the
plain names and reuses a cluster left up.
"""

from __future__ import annotations

import os

import pytest

from tests.rig import RIG_CACHE

# The longest groups, longest first (tests/timing.py's table of a full run): started first, they
# leave the short ones to fill in at the end, so both workers end at about the same time.
SLOW = (
    "tests/integration/test_misp_layer.py",
    "tests/integration/test_site.py",
    "tests/integration/test_molecule.py::test_molecule_scenario[rke2_ha]",
    "tests/integration/test_inventories.py",
    "tests/integration/test_access_rbac.py",
    "keycloak",
    "tests/integration/test_longhorn_volume.py",
)
# Files whose tests are groups of their own: independent, each long.
SPLIT = ("tests/integration/test_molecule.py",)
# Files that share a costly session peer run on one worker, so it starts once: Keycloak takes
# minutes of both cores to start.
SHARED = dict.fromkeys(
    (
        "tests/integration/test_k8s_oidc_login.py",
        "tests/integration/test_keycloak_role.py",
        "tests/integration/test_rig_peers.py",
    ),
    "keycloak",
)


def pytest_configure(config) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    if worker != "gw0":
        cluster = os.environ.get("CTI_RIG_CLUSTER", "cti-misp")
        state = os.environ.get("CTI_RIG_STATE", str(RIG_CACHE / "state"))
        os.environ["CTI_RIG_CLUSTER"] = f"{cluster}-{worker}"
        os.environ["CTI_RIG_STATE"] = f"{state}-{worker}"


def _group(item) -> str:
    path = item.nodeid.split("::", 1)[0]
    return item.nodeid if path in SPLIT else SHARED.get(path, path)


def _rank(item) -> int:
    group = _group(item)
    return SLOW.index(group) if group in SLOW else len(SLOW)


# First: xdist's own hook turns the xdist_group marks into the groups it schedules.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items) -> None:
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_group(item)))
    # sort is stable: groups keep their order within a rank, tests keep theirs within a group.
    items.sort(key=_rank)
