"""The AWX set-up as code: the execution environment builds its context, every job template names
a playbook of this repository, every survey variable is an option some role declares, and
playbooks/awx_configure.yml gives every job template the Vault and kubeconfig credentials, whose
injectors feed what the plays read.

``ansible-builder create`` only writes the build context (Containerfile and _build/), so it runs
offline; building the image itself needs registries and is left to the release pipeline. AWX
itself cannot run here (PostgreSQL, receptor, images) and only MISP and RKE2 may have test
doubles, so the AWX side is checked from the files: job templates, credential types and the
playbook's tasks.
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime

import pytest
import yaml
from dateutil.rrule import rrulestr

from tests.rig.peers._base import REPO, VENV_BIN

CONTROLLER = REPO / "awx" / "controller.yml"
PINS = {
    "kubernetes.core": "6.2.0",
    "community.general": "11.4.2",
    "community.hashi_vault": "7.1.0",
    "ansible.posix": "2.1.0",
    "community.crypto": "3.0.5",
    "awx.awx": "24.6.1",
}


class _Loader(yaml.SafeLoader):
    """Reads Ansible's !unsafe tag as the plain string it marks."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


@pytest.fixture(scope="module")
def controller():
    return yaml.load(CONTROLLER.read_text(), Loader=_Loader)  # noqa: S506 - SafeLoader subclass


def role_options() -> dict[str, str]:
    """Every option of every entry point of every role: option -> role."""
    options = {}
    for spec in sorted(REPO.glob("roles/*/meta/argument_specs.yml")):
        for entry in (yaml.safe_load(spec.read_text())["argument_specs"] or {}).values():
            for option in entry.get("options") or {}:
                options.setdefault(option, spec.parent.parent.name)
    return options


def test_builder_create(tmp_path):
    result = subprocess.run(
        [
            str(VENV_BIN / "ansible-builder"),
            "create",
            "-f",
            str(REPO / "execution-environment.yml"),
            "-c",
            str(tmp_path / "context"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    build = tmp_path / "context" / "_build"
    containerfile = (tmp_path / "context" / "Containerfile").read_text()
    assert containerfile.startswith('ARG EE_BASE_IMAGE="')
    assert "ansible-core==2.19.14" in containerfile
    # The galaxy requirements, pinned to the ansible 12.3 package's collections.
    collections = yaml.safe_load((build / "requirements.yml").read_text())["collections"]
    assert {c["name"]: c["version"] for c in collections} == PINS
    constraints = dict(line.split("==") for line in (REPO / "constraints.txt").read_text().splitlines() if "==" in line)
    for line in (build / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            assert constraints.get(name) == version, f"{name}=={version} not as in constraints.txt"
    # The collection itself, laid out as a collection.
    for part in (
        "galaxy.yml",
        "meta/runtime.yml",
        "plugins/modules/misp_worker_status.py",
        "roles/misp_backup/templates/backup.sh.j2",
    ):
        assert (build / "collection" / part).is_file(), part


def test_job_templates_name_playbooks(controller):
    templates = controller["awx_job_templates"]
    assert {t["playbook"] for t in templates} == {
        "site.yml",
        "playbooks/backup.yml",
        "playbooks/restore.yml",
        "playbooks/upgrade.yml",
        "playbooks/healthcheck.yml",
    }
    for template in templates:
        assert (REPO / template["playbook"]).is_file(), template["playbook"]
    for name, path in controller["awx_inventories"].items():
        assert (REPO / path / "hosts.yml").is_file(), name


def test_survey_variables_are_role_options(controller):
    options = role_options()
    for template in controller["awx_job_templates"]:
        # A template that only checks asks nothing; every one that runs asks for something.
        assert template["survey"] or template.get("job_type") == "check", f"{template['name']} has no survey"
        for question in template["survey"]:
            assert question["variable"] in options, f"{template['name']}: {question['variable']} is no role option"
            assert question["type"] in {"text", "integer", "multiplechoice", "password", "float"}


def test_the_nightly_drift_check_is_site_yml_under_check_and_diff(controller):
    """Issue 20: operators find drift from AWX on a schedule and see what differs. The drift check
    is site.yml in check mode with diff, as is the converge's log; each schedule names a job
    template and an rrule AWX reads (dateutil's, which AWX parses them with)."""
    templates = {template["name"]: template for template in controller["awx_job_templates"]}
    check = templates["MISP drift check"]
    assert (check["playbook"], check["job_type"], check["diff_mode"]) == ("site.yml", "check", True)
    assert templates["MISP site"]["diff_mode"] is True
    assert all(template.get("job_type", "run") in ("run", "check") for template in templates.values())
    schedules = controller["awx_schedules"]
    assert [schedule["job_template"] for schedule in schedules] == ["MISP drift check"]
    for schedule in schedules:
        rule = rrulestr(schedule["rrule"].replace(" RRULE:", "\nRRULE:"))
        assert rule.after(datetime(2026, 12, 7, 2, 0, tzinfo=UTC)) == datetime(2026, 12, 8, 1, 0, tzinfo=UTC)


def test_vault_credential_type_injects_env(controller):
    credential_type = controller["awx_vault_credential_type"]
    fields = {f["id"]: f for f in credential_type["inputs"]["fields"]}
    assert fields["vault_token"]["secret"] is True
    assert credential_type["injectors"]["env"]["VAULT_ADDR"] == "{{ vault_addr }}"
    assert credential_type["injectors"]["env"]["VAULT_TOKEN"] == "{{ vault_token }}"


def test_awx_configure_refuses_bad_input(run_playbook):
    result = run_playbook("playbooks/awx_configure.yml", {"awx_project_scm_url": "ftp://example.org/repo.git"})
    assert result.rc != 0 and "ftp://example.org/repo.git" in result.stdout
    assert result.changed == 0


@pytest.mark.parametrize(
    "schedule",
    [
        {"name": "Hourly", "job_template": "MISP drift", "rrule": "DTSTART:20260101T010000Z RRULE:FREQ=HOURLY"},
        {"name": "Hourly", "job_template": "MISP drift check", "rrule": "FREQ=HOURLY"},
    ],
)
def test_awx_configure_refuses_a_schedule_of_no_template_or_no_rule(run_playbook, schedule):
    settings = {"awx_project_scm_url": "https://example.org/repo.git", "awx_execution_environment_image": "ee:1"}
    result = run_playbook("playbooks/awx_configure.yml", {**settings, "awx_schedules": [schedule]})
    assert result.rc != 0 and result.changed == 0, result.stdout[-3000:]
    # The refusal names the bad schedule (the message lists the job templates in any case).
    assert "Check the schedules" in result.stdout, result.stdout[-3000:]
    assert repr(schedule) in result.stdout, result.stdout[-3000:]


# --- the kubeconfig credential --------------------------------------------------------------------

# What a play hands kubernetes.core as K8S_AUTH_KUBECONFIG, in either spelling of `environment:`
# ({K8S_AUTH_KUBECONFIG: "{{ var }}"} or "{{ {'K8S_AUTH_KUBECONFIG': var} | combine(...) }}").
_KUBECONFIG_FROM = re.compile(r"""K8S_AUTH_KUBECONFIG['"]?\s*:\s*['"]?(?:\{\{\s*)?(\w+)""")


def plays(playbook: str) -> list[dict]:
    """The plays a playbook runs, imported playbooks included; each with ``_dir``, its directory."""
    path = REPO / playbook
    found = []
    for play in yaml.safe_load(path.read_text()):
        imported = play.get("ansible.builtin.import_playbook") or play.get("import_playbook")
        if imported:
            found += plays(str((path.parent / imported).relative_to(REPO)))
        else:
            found.append({**play, "_dir": path.parent})
    return found


def environment_of(play: dict) -> str:
    """The play's `environment:`, a variable it names (cti_k8s_environment) read from its vars_files."""
    defined = {}
    for vars_file in play.get("vars_files", []):
        defined.update(yaml.safe_load((play["_dir"] / vars_file).read_text()))
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: str(defined.get(m[1], m[0])), str(play["environment"]))


def test_kubeconfig_credential_type_feeds_the_plays(controller):
    credential_type = controller["awx_kubeconfig_credential_type"]
    fields = {f["id"]: f for f in credential_type["inputs"]["fields"]}
    assert fields["kubeconfig"]["secret"] is True and fields["kubeconfig"]["multiline"] is True
    injectors = credential_type["injectors"]
    assert injectors["file"] == {"template.kubeconfig": "{{ kubeconfig }}"}
    written = "{{ tower.filename.kubeconfig }}"
    assert injectors["env"] == {"K8S_AUTH_KUBECONFIG": written}
    # The extra var must be the one the plays turn into K8S_AUTH_KUBECONFIG: an inventory's
    # cti_kubeconfig names a file that is not in the job's container.
    assert set(injectors["extra_vars"].values()) == {written}
    for template in controller["awx_job_templates"]:
        read = [
            _KUBECONFIG_FROM.findall(environment_of(play))
            for play in plays(template["playbook"])
            if "environment" in play
        ]
        assert read, f"{template['playbook']}: no play sets K8S_AUTH_KUBECONFIG"
        for names in read:
            assert names and set(names) <= set(injectors["extra_vars"]), (template["playbook"], names)


def test_every_job_template_gets_both_credentials():
    """The job template task names the Vault and the kubeconfig credential the play creates."""
    tasks = {
        t["name"]: t
        for play in yaml.safe_load((REPO / "playbooks" / "awx_configure.yml").read_text())
        for t in play["tasks"]
    }
    job_templates = next(t["awx.awx.job_template"] for t in tasks.values() if "awx.awx.job_template" in t)
    assert job_templates["credentials"].split("+")[0].strip() == (
        "{{ [awx_vault_credential_name, awx_kubeconfig_credential_name]"
    )
    created = [t["awx.awx.credential"]["name"] for t in tasks.values() if "awx.awx.credential" in t]
    assert sorted(created) == ["{{ awx_kubeconfig_credential_name }}", "{{ awx_vault_credential_name }}"]
