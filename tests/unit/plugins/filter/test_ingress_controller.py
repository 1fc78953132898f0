"""The ingress controller table and the combinations RKE2 cannot run (RKE2's ingress migration guide)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.cti.misp_platform.plugins.filter.ingress_controller import (
    FilterModule,
    helmchart_deployed_ingress,
    ingress_controller,
    ingress_controller_problems,
    rke2_deployed_ingress,
)


def test_each_choice_has_rke2s_names():
    assert ingress_controller("traefik") == {
        "rke2_name": "traefik",
        "chart": "rke2-traefik",
        "ingress_class": "traefik",
        "pod_labels": {"app.kubernetes.io/name": "rke2-traefik"},
    }
    assert ingress_controller("nginx")["rke2_name"] == "ingress-nginx"
    assert ingress_controller("nginx")["chart"] == "rke2-ingress-nginx"
    assert ingress_controller("nginx")["pod_labels"] == {"app.kubernetes.io/name": "rke2-ingress-nginx"}


def test_the_table_cannot_be_changed_through_a_result():
    ingress_controller("traefik")["chart"] = "other"
    assert ingress_controller("traefik")["chart"] == "rke2-traefik"


@pytest.mark.parametrize("bad", ["ingress-nginx", "Traefik", "", None, "haproxy"])
def test_an_unknown_controller_is_refused_naming_it(bad):
    with pytest.raises(AnsibleFilterError, match=f"ingress_controller '{bad}' is not a controller RKE2 packages"):
        ingress_controller(bad)
    assert ingress_controller_problems(bad, "v1.35.4+rke2r1") == [
        f"ingress_controller '{bad}' is not a controller RKE2 packages: choose one of traefik, nginx"
    ]


@pytest.mark.parametrize(
    "version",
    [
        "v1.32.11+rke2r1",
        "v1.33.7+rke2r1",
        "v1.34.3+rke2r2",
        "v1.34.9+rke2r1",
        "v1.35.0+rke2r1",
        "v1.35.4+rke2r1",
        "v1.36.1+rke2r1",
    ],
)
def test_traefik_on_a_release_that_can_deploy_it(version):
    assert ingress_controller_problems("traefik", version) == []


@pytest.mark.parametrize(
    "version", ["v1.31.14+rke2r1", "v1.32.10+rke2r1", "v1.33.6+rke2r1", "v1.34.2+rke2r1", "v1.28.15+rke2r1"]
)
def test_traefik_on_an_older_release_is_refused_naming_it(version):
    (problem,) = ingress_controller_problems("traefik", version)
    assert problem.startswith("ingress_controller 'traefik' needs RKE2 v1.32.11+rke2r1")
    assert f"rke2_version is {version}" in problem


def test_nginx_until_rke2_drops_it():
    assert ingress_controller_problems("nginx", "v1.30.2+rke2r1") == []
    assert ingress_controller_problems("nginx", "v1.36.2+rke2r1") == []
    (problem,) = ingress_controller_problems("nginx", "v1.37.0+rke2r1")
    assert "ingress_controller 'nginx'" in problem and "rke2_version is v1.37.0+rke2r1" in problem


def test_an_unparsable_version_is_left_to_the_version_check():
    assert ingress_controller_problems("traefik", "") == []
    assert ingress_controller_problems("traefik", "latest") == []


def test_a_new_cluster_or_the_same_controller_passes():
    assert ingress_controller_problems("traefik", "v1.35.4+rke2r1", []) == []
    assert ingress_controller_problems("traefik", "v1.35.4+rke2r1", ["traefik"]) == []
    # Phase 3 of the guide: the old controller goes once the new one runs beside it.
    assert ingress_controller_problems("traefik", "v1.35.4+rke2r1", ["nginx", "traefik"]) == []


def test_a_switch_without_the_migration_is_refused_naming_both():
    (problem,) = ingress_controller_problems("traefik", "v1.35.4+rke2r1", ["nginx"], "server-1")
    assert problem.startswith("ingress_controller is 'traefik' but server-1 runs ingress-nginx")
    assert "RKE2's ingress migration guide" in problem and "set it back to 'nginx'" in problem
    (problem,) = ingress_controller_problems("nginx", "v1.35.4+rke2r1", ["traefik"])
    assert problem.startswith("ingress_controller is 'nginx' but the cluster runs traefik")


def test_every_problem_is_reported_at_once():
    problems = ingress_controller_problems("traefik", "v1.33.2+rke2r1", ["nginx"])
    assert len(problems) == 2


@pytest.mark.parametrize(
    ("config", "installed", "deployed"),
    [
        (None, "", []),  # never set up
        (None, "v1.35.4+rke2r1", []),  # no config.yaml: a joining server
        ({"token": "t"}, "", []),
        ({"token": "t"}, "v1.35.4+rke2r1", ["nginx"]),  # default before 1.36
        ({"token": "t"}, "v1.36.0+rke2r1", ["traefik"]),  # default from 1.36
        ({"ingress-controller": "traefik"}, "v1.35.4+rke2r1", ["traefik"]),
        ({"ingress-controller": "ingress-nginx,traefik"}, "v1.35.4+rke2r1", ["nginx", "traefik"]),
        ({"ingress-controller": ["ingress-nginx", "traefik"]}, "v1.35.4+rke2r1", ["nginx", "traefik"]),
        ({"disable": ["rke2-ingress-nginx"]}, "v1.35.4+rke2r1", []),
        ({"disable": "rke2-traefik", "ingress-controller": "traefik"}, "v1.35.4+rke2r1", []),
        ({"ingress-controller": "none"}, "v1.35.4+rke2r1", []),
    ],
)
def test_what_a_server_runs_follows_its_config(config, installed, deployed):
    assert rke2_deployed_ingress(config, installed) == deployed


def test_what_the_cluster_runs_follows_rke2s_helmcharts():
    charts = [{"metadata": {"name": n}} for n in ("rke2-canal", "rke2-ingress-nginx", "rke2-coredns")]
    assert helmchart_deployed_ingress(charts) == ["nginx"]
    assert helmchart_deployed_ingress([]) == []
    assert helmchart_deployed_ingress(None) == []


def test_the_filters_are_registered():
    assert set(FilterModule().filters()) == {
        "ingress_controller",
        "ingress_controller_problems",
        "rke2_deployed_ingress",
        "helmchart_deployed_ingress",
    }
