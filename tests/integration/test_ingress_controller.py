"""One ingress_controller for the whole platform (issue 17): the inventory's choice reaches RKE2's
config.yaml, the controller's HelmChartConfig, MISP's Ingress and the NetworkPolicy peer of MISP's
frontend together, and a controller the cluster does not run is refused before anything changes.

The roles run against the rig's real kube-apiserver; config.yaml is rendered from the rke2 role's
own defaults, variables and template (tests/integration/targets/ingress_controller/converge.yml).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.dynamic.exceptions import NotFoundError

from tests.playbook import ansible_playbook

pytestmark = pytest.mark.rig

PLAYBOOK = Path(__file__).parent / "targets" / "ingress_controller" / "converge.yml"
RKE2_VALIDATE = PLAYBOOK.with_name("rke2_validate.yml")
NAMESPACE = "misp"  # inventories/local: misp_namespace
PEER_POLICY = "misp-frontend-from-ingress-controller"
EXPECTED = {
    "nginx": {"rke2": "ingress-nginx", "chart": "rke2-ingress-nginx", "class": "nginx"},
    "traefik": {"rke2": "traefik", "chart": "rke2-traefik", "class": "traefik"},
}


def converge(env, out: Path | None = None, **variables):
    extravars = {"rke2_token": "rig-token", "rke2_servers_group": "controller", **variables}
    if out is not None:
        out.mkdir()
        extravars["out_dir"] = str(out)
    return ansible_playbook(PLAYBOOK, extravars, env=env, timeout=600)


def helmchartconfig(dyn, name):
    api = dyn.resources.get(api_version="helm.cattle.io/v1", kind="HelmChartConfig")
    try:
        return api.get(name=name, namespace="kube-system")
    except NotFoundError:
        return None


def state(api, dyn) -> dict:
    """resourceVersion of every object the ingress part writes (None: absent)."""
    net = client.NetworkingV1Api(api)
    charts = [entry["chart"] for entry in EXPECTED.values()]
    versions = {name: getattr(helmchartconfig(dyn, name), "metadata", None) for name in charts}
    return {
        "policy": net.read_namespaced_network_policy(PEER_POLICY, NAMESPACE).metadata.resource_version,
        "ingress": net.read_namespaced_ingress("misp", NAMESPACE).metadata.resource_version,
        **{name: meta.resourceVersion if meta else None for name, meta in versions.items()},
    }


@pytest.fixture(scope="module")
def no_rke2_charts(dyn):
    """No packaged controller HelmChart in kube-system (a cluster without RKE2's charts), and the
    HelmChartConfigs this module writes removed at the end."""
    charts = dyn.resources.get(api_version="helm.cattle.io/v1", kind="HelmChart")
    for name in ("rke2-traefik", "rke2-ingress-nginx"):
        assert not charts.get(namespace="kube-system", field_selector=f"metadata.name={name}").items, name
    yield
    configs = dyn.resources.get(api_version="helm.cattle.io/v1", kind="HelmChartConfig")
    for name in ("rke2-ingress-nginx",):
        if helmchartconfig(dyn, name):
            configs.delete(name=name, namespace="kube-system")


@pytest.mark.parametrize("controller", ["nginx", "traefik"])
@pytest.mark.usefixtures("no_rke2_charts")
def test_the_choice_reaches_config_yaml_helmchartconfig_ingress_and_peers(controller, api, dyn, env, tmp_path):
    expected = EXPECTED[controller]
    result = converge(env, tmp_path / "out", ingress_controller=controller)
    assert result.rc == 0, result.stdout[-4000:]

    config = yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())
    assert config["ingress-controller"] == expected["rke2"]

    hcc = helmchartconfig(dyn, expected["chart"])
    assert hcc is not None, f"no HelmChartConfig {expected['chart']}"
    values = yaml.safe_load(hcc.spec.valuesContent)
    if controller == "traefik":
        assert values["ports"]["web"]["redirections"]["entryPoint"]["to"] == "websecure"
    else:
        assert values["controller"]["config"]["ssl-protocols"] == "TLSv1.2 TLSv1.3"

    net = client.NetworkingV1Api(api)
    assert net.read_namespaced_ingress("misp", NAMESPACE).spec.ingress_class_name == expected["class"]
    peer = net.read_namespaced_network_policy(PEER_POLICY, NAMESPACE).spec.ingress[0]._from[0]
    assert peer.namespace_selector.match_labels == {"kubernetes.io/metadata.name": "kube-system"}
    assert peer.pod_selector.match_labels == {"app.kubernetes.io/name": expected["chart"]}


@pytest.mark.usefixtures("no_rke2_charts")
def test_a_controller_the_cluster_does_not_run_is_refused_before_any_change(api, dyn, env):
    """A cluster whose RKE2 deployed rke2-traefik: asking for nginx stops at the check, naming both,
    and no object changes (namespace_baseline comes after the check, as in playbooks/platform.yml)."""
    assert converge(env, ingress_controller="traefik").rc == 0
    charts = dyn.resources.get(api_version="helm.cattle.io/v1", kind="HelmChart")
    charts.create(
        body={
            "apiVersion": "helm.cattle.io/v1",
            "kind": "HelmChart",
            "metadata": {"name": "rke2-traefik", "namespace": "kube-system"},
            "spec": {"chart": "rke2-traefik", "bootstrap": False},
        },
        namespace="kube-system",
    )
    try:
        before = state(api, dyn)
        result = converge(env, ingress_controller="nginx")
        assert result.rc != 0
        assert (
            "ingress_controller is 'nginx' but the cluster (HelmCharts in kube-system) runs traefik" in result.stdout
        ), result.stdout[-4000:]
        assert "RKE2's ingress migration guide" in result.stdout
        assert state(api, dyn) == before
        # The controller the cluster runs still converges.
        assert converge(env, ingress_controller="traefik").rc == 0
    finally:
        charts.delete(name="rke2-traefik", namespace="kube-system")


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"ingress_controller": "traefik", "rke2_config": {"ingress-controller": "ingress-nginx"}},
            'a config layer sets ingress-controller "ingress-nginx" but ingress_controller is "traefik"',
        ),
        (
            {"ingress_controller": "traefik", "rke2_version": "v1.33.2+rke2r1"},
            "ingress_controller 'traefik' needs RKE2",
        ),
        (
            {"ingress_controller": "nginx", "rke2_version": "v1.37.1+rke2r1"},
            "RKE2 ships ingress-nginx only up to v1.36",
        ),
        ({"ingress_controller": "traefik"}, None),
    ],
)
def test_the_rke2_role_refuses_what_rke2_cannot_run_before_any_change(variables, message):
    """rke2's validation (read-only) stops at its ingress check naming the value; a usable choice
    passes it and stops only at the airgap artifacts, which this machine does not have."""
    result = ansible_playbook(
        RKE2_VALIDATE, {"rke2_token": "rig-token", "rke2_servers_group": "controller", **variables}, timeout=300
    )
    assert result.rc != 0
    failed = result.stdout[result.stdout.index("fatal:") :] if "fatal:" in result.stdout else result.stdout
    # The YAML callback folds long messages and doubles single quotes.
    failed = " ".join(failed.replace("''", "'").split())
    if message:
        assert "TASK [cti.misp_platform.rke2 : Check the ingress controller]" in result.stdout
        assert message in failed, result.stdout[-3000:]
    else:
        check = result.stdout.split("TASK [cti.misp_platform.rke2 : Check the ingress controller]", 1)[1]
        assert check.split("\n", 2)[1] == "ok: [localhost]", result.stdout[-3000:]
        assert "sha256sum-amd64.txt" in failed, result.stdout[-3000:]
