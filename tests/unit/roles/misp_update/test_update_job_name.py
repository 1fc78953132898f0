"""misp_update's Job name follows its whole pod template.

A Job's pod template is immutable: if a change of the shared pod pieces (mounts, environment,
init container) kept the Job's name, the next run would try to patch the finished Job and fail
with "spec.template: field is immutable". The name is therefore a hash of the pod template.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.rig.peers._base import REPO
from tests.unit.roles.render import render_playbook

PLAYBOOK = Path(__file__).with_name("render_job.yml")
CA = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"


def render(tmp_path: Path, name: str, **extravars) -> dict:
    out = tmp_path / name
    result = render_playbook(PLAYBOOK, out, role_dir=str(REPO / "roles" / "misp_update"), **extravars)
    assert result.rc == 0, result.stdout[-3000:]
    return yaml.safe_load((out / "job.yaml").read_text())


def test_job_name_changes_with_the_pod_template_only(tmp_path):
    first = render(tmp_path, "first")
    again = render(tmp_path, "again")
    with_ca = render(tmp_path, "with-ca", misp_common_ca_certificates=[CA])

    # Same inputs, same Job: an unchanged run finds the finished Job.
    assert again["metadata"]["name"] == first["metadata"]["name"]
    # Extra CAs add a mount and environment to the pod template: a new Job, not a patch.
    assert with_ca["spec"]["template"] != first["spec"]["template"]
    assert with_ca["metadata"]["name"] != first["metadata"]["name"]

    pod = first["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "misp-update"
    assert pod["restartPolicy"] == "Never"
    container = pod["containers"][0]
    assert container["command"] == ["bash", "/etc/misp-update/update.sh"]
    assert {"name": "update", "mountPath": "/etc/misp-update", "readOnly": True} in container["volumeMounts"]
    assert "MISP_ADMIN_API_KEY" in [e["name"] for e in container["env"]]
