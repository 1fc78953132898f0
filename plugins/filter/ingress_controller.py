# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory's ingress_controller, what it means to RKE2, and the combinations RKE2 cannot run.

One table (CONTROLLERS) gives each choice's name in RKE2's config.yaml, its packaged chart (the
HelmChartConfig's name), its IngressClass and the labels of its pods (the NetworkPolicy peers),
so that the rke2, ingress and namespace_baseline roles cannot disagree.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: ingress_controller
short_description: What an ingress_controller choice is called by RKE2, its chart and its pods
version_added: 1.0.0
description:
  - Returns, for C(traefik) or C(nginx), the C(ingress-controller) value of RKE2's config.yaml
    (C(rke2_name)), the packaged chart a HelmChartConfig configures (C(chart)), the IngressClass
    (C(ingress_class)) and the labels of the controller's pods in kube-system (C(pod_labels)).
  - Fails naming the value for anything else.
  - The same file holds the checks built on that table. C(ingress_controller_problems(rke2_version,
    deployed, source)) returns one message per reason RKE2 cannot run the controller (a release
    that cannot deploy Traefik or no longer ships ingress-nginx, or a cluster that runs another
    controller, see RKE2's ingress migration guide). C(rke2_deployed_ingress(installed_version)) reads
    the controllers a server runs from its current config.yaml (a dict, or none), and
    C(helmchart_deployed_ingress) those whose packaged HelmChart is among k8s_info resources.
options:
  _input:
    description: ingress_controller.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: The NetworkPolicy peer of the controller
  ansible.builtin.debug:
    msg: "{{ (ingress_controller | cti.misp_platform.ingress_controller).pod_labels }}"
"""

RETURN = r"""
_value:
  description: rke2_name, chart, ingress_class and pod_labels of the controller.
  type: dict
"""

# RKE2's names (config.yaml ingress-controller, packaged chart) and the chart's pod labels.
CONTROLLERS = {
    "traefik": {
        "rke2_name": "traefik",
        "chart": "rke2-traefik",
        "ingress_class": "traefik",
        "pod_labels": {"app.kubernetes.io/name": "rke2-traefik"},
    },
    "nginx": {
        "rke2_name": "ingress-nginx",
        "chart": "rke2-ingress-nginx",
        "ingress_class": "nginx",
        "pod_labels": {"app.kubernetes.io/name": "rke2-ingress-nginx"},
    },
}

# RKE2's ingress migration guide: the releases that can deploy Traefik (per minor, the first
# patch; every minor from 1.35 on can). RKE2 makes Traefik the default of new clusters from 1.36
# and drops ingress-nginx in 1.37.
TRAEFIK_FIRST_PATCH = {32: 11, 33: 7, 34: 3}
TRAEFIK_ALL_FROM_MINOR = 35
TRAEFIK_DEFAULT_FROM_MINOR = 36
NGINX_LAST_MINOR = 36
GUIDE = "RKE2's ingress migration guide"

_VERSION = re.compile(r"^v1\.(\d+)\.(\d+)\+rke2r\d+$")


def _version(value):
    """(minor, patch) of an RKE2 release name such as v1.35.4+rke2r1, or None."""
    match = _VERSION.match(str(value or ""))
    return (int(match.group(1)), int(match.group(2))) if match else None


def _unknown(controller):
    choices = ", ".join(CONTROLLERS)
    return f"ingress_controller '{controller}' is not a controller RKE2 packages: choose one of {choices}"


def ingress_controller(controller):
    """The table entry of ``controller``; fails naming a value RKE2 has no controller for."""
    if controller not in CONTROLLERS:
        raise AnsibleFilterError(_unknown(controller))
    return dict(CONTROLLERS[controller])


def rke2_deployed_ingress(config, installed_version):
    """Controllers an RKE2 server runs now, from its current config.yaml (a dict, or None when it has
    none) and the installed release ('' when none): the ingress-controller key, else the release's
    default, less what `disable` removes. Empty for a server that was never set up.
    """
    if config is None or not installed_version:
        return []
    config = config or {}
    names = config.get("ingress-controller")
    if names is None:
        version = _version(installed_version)
        traefik_default = version is not None and version[0] >= TRAEFIK_DEFAULT_FROM_MINOR
        names = ["traefik" if traefik_default else "ingress-nginx"]
    elif isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    disabled = config.get("disable") or []
    disabled = [disabled] if isinstance(disabled, str) else disabled
    by_rke2_name = {entry["rke2_name"]: name for name, entry in CONTROLLERS.items()}
    found = [by_rke2_name[n] for n in names if n in by_rke2_name]
    return [name for name in found if CONTROLLERS[name]["chart"] not in disabled]


def ingress_controller_problems(controller, rke2_version, deployed=None, source="the cluster"):
    """Messages naming each reason RKE2 ``rke2_version`` cannot run ``controller`` on a cluster that
    runs ``deployed`` now (controller names; empty for a new cluster). Empty when it can.
    """
    if controller not in CONTROLLERS:
        return [_unknown(controller)]
    problems = []
    version = _version(rke2_version)
    if version is not None:
        minor, patch = version
        can_traefik = minor >= TRAEFIK_ALL_FROM_MINOR or patch >= TRAEFIK_FIRST_PATCH.get(minor, float("inf"))
        if controller == "traefik" and not can_traefik:
            problems.append(
                f"ingress_controller 'traefik' needs RKE2 v1.32.11+rke2r1, v1.33.7+rke2r1, v1.34.3+rke2r1 or any "
                f"v1.35 or later ({GUIDE}); rke2_version is {rke2_version}: upgrade RKE2 first or choose nginx"
            )
        if controller == "nginx" and minor > NGINX_LAST_MINOR:
            problems.append(
                f"ingress_controller 'nginx': RKE2 ships ingress-nginx only up to v1.36 and rke2_version is "
                f"{rke2_version}: migrate to traefik ({GUIDE}) before upgrading"
            )
    deployed = list(deployed or [])
    if deployed and controller not in deployed:
        running = ", ".join(CONTROLLERS[d]["rke2_name"] for d in deployed)
        problems.append(
            f"ingress_controller is '{controller}' but {source} runs {running}: "
            f"RKE2 does not switch ingress controllers in place. Follow {GUIDE} (run both controllers, "
            f"Traefik on other ports; duplicate and test the Ingresses; remove the old controller; clean up) "
            f"and set ingress_controller to '{controller}' once the cluster runs it, or set it back to "
            f"'{deployed[0]}'"
        )
    return problems


def helmchart_deployed_ingress(helmcharts):
    """Controllers whose packaged HelmChart is in kube-system (k8s_info resources of HelmCharts)."""
    names = {item.get("metadata", {}).get("name") for item in helmcharts or []}
    return [name for name, entry in CONTROLLERS.items() if entry["chart"] in names]


class FilterModule:
    def filters(self):
        return {
            "ingress_controller": ingress_controller,
            "ingress_controller_problems": ingress_controller_problems,
            "rke2_deployed_ingress": rke2_deployed_ingress,
            "helmchart_deployed_ingress": helmchart_deployed_ingress,
        }
