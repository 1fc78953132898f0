"""image_policy on the rig: the pre-deployment check, the scanner hook, and the
ValidatingAdmissionPolicy evaluated by the real kube-apiserver.

The policy is bound with a test-only namespace label and a test-only name, so it never touches
the namespaces of other tests; everything is deleted afterwards.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sys
import time
from pathlib import Path

import pytest
from kubernetes.dynamic.exceptions import ApiException, NotFoundError

pytestmark = pytest.mark.rig

TARGET = Path(__file__).parent / "targets" / "image_policy"
SCANNER = [sys.executable, str(TARGET / "files" / "scanner.py")]
DIGEST = "@sha256:" + "ab" * 32
ALLOWED = ["ghcr.io/misp", "docker.io/library"]
GOOD = f"ghcr.io/misp/misp-docker/misp-core:v2.5.31{DIGEST}"
GOOD_DB = f"docker.io/library/mariadb:11.4{DIGEST}"
TAG_ONLY = "ghcr.io/misp/misp-docker/misp-core:v2.5.31"
FOREIGN = f"quay.io/someone/misp-core:v2.5.31{DIGEST}"


@pytest.fixture
def policy(dyn):
    """A unique policy name and namespace label; removes both policy objects afterwards."""
    name = f"ip-test-{secrets.token_hex(3)}"
    yield name
    for kind in ("ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicy"):
        api = dyn.resources.get(api_version="admissionregistration.k8s.io/v1", kind=kind)
        with contextlib.suppress(NotFoundError):
            api.delete(name=name)


def exists(dyn, kind, name, api_version="v1"):
    try:
        dyn.resources.get(api_version=api_version, kind=kind).get(name=name)
    except NotFoundError:
        return False
    return True


def flat(run):
    """The run's output with the YAML callback's line wrapping undone."""
    return " ".join(run.stdout.split())


def role_vars(name, images, **extra):
    return {
        "image_policy_images": images,
        "image_policy_allowed_registries": ALLOWED,
        "image_policy_admission_enabled": True,
        "image_policy_admission_name": name,
        "image_policy_namespace_selector": {"matchLabels": {"cti-test/image-policy": name}},
        **extra,
    }


def test_check_fails_before_any_change(run_playbook, env, dyn, policy):
    marker = f"{policy}-deployed"
    run = run_playbook(
        TARGET / "policy.yml", {**role_vars(policy, [TAG_ONLY, FOREIGN, GOOD]), "ip_marker_namespace": marker}, env=env
    )
    assert run.rc != 0, run.stdout
    assert run.changed == 0, run.stdout
    failure = flat(run)[flat(run).index("fatal:") :]
    assert f"not pinned by digest (@sha256:<64 hex>): {TAG_ONLY}." in failure
    assert f"ghcr.io/misp, docker.io/library: {FOREIGN}." in failure
    assert GOOD not in failure.replace(TAG_ONLY, "")
    for kind in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"):
        assert not exists(dyn, kind, policy, "admissionregistration.k8s.io/v1")
    assert not exists(dyn, "Namespace", marker)


@pytest.mark.parametrize(
    "registries",
    [["https://ghcr.io"], ["ghcr.io/"], []],
    ids=["scheme", "trailing-slash", "empty"],
)
def test_bad_registry_list(run_playbook, registries):
    run = run_playbook(
        TARGET / "check.yml", {"image_policy_images": [GOOD], "image_policy_allowed_registries": registries}
    )
    assert run.rc != 0
    assert "image_policy_allowed_registries must list registries" in flat(run)
    if registries:
        assert registries[0] in flat(run)


def pod(name, *images, init=()):
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    spec = {"containers": containers}
    if init:
        spec["initContainers"] = [{"name": f"i{i}", "image": image} for i, image in enumerate(init)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def refusal(api, body, namespace, dry_run=True):
    """The API server's refusal message, or None when the object was admitted."""
    try:
        api.create(body=body, namespace=namespace, query_params=[("dryRun", "All")] if dry_run else [])
    except ApiException as exc:
        assert exc.status in (403, 422), exc.body
        return json.loads(exc.body)["message"]
    return None


def test_admission_policy(run_playbook, env, dyn, policy):
    first = run_playbook(TARGET / "policy.yml", role_vars(policy, [GOOD, GOOD_DB]), env=env)
    assert first.rc == 0, first.stdout + first.stderr
    assert first.changed == 1
    again = run_playbook(TARGET / "policy.yml", role_vars(policy, [GOOD, GOOD_DB]), env=env)
    assert again.rc == 0 and again.changed == 0, again.stdout

    namespaces = dyn.resources.get(api_version="v1", kind="Namespace")
    namespaces.create(body={"metadata": {"name": policy, "labels": {"cti-test/image-policy": policy}}})
    try:
        pods = dyn.resources.get(api_version="v1", kind="Pod")
        # The API server picks a new policy up within seconds; wait for the first refusal.
        deadline = time.monotonic() + 60
        while (msg := refusal(pods, pod("unpinned", TAG_ONLY), policy)) is None:
            assert time.monotonic() < deadline, "the policy never took effect"
            time.sleep(1)
        assert f"images must be pinned by digest (@sha256:<64 hex>): {TAG_ONLY}" in msg

        msg = refusal(pods, pod("foreign", FOREIGN), policy)
        assert msg and f"images must come from ghcr.io/misp, docker.io/library: {FOREIGN}" in msg
        msg = refusal(pods, pod("init", GOOD, init=[f"docker.io/busybox{DIGEST}"]), policy)
        assert msg and f"docker.io/busybox{DIGEST}" in msg, "init containers are checked"
        # A prefix is a path boundary: ghcr.io/mispx is not ghcr.io/misp.
        assert refusal(pods, pod("lookalike", f"ghcr.io/mispx/core{DIGEST}"), policy)

        # Pod templates are refused before any controller makes a pod.
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "bad"},
            "spec": {
                "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": pod("x", TAG_ONLY)["spec"]},
            },
        }
        msg = refusal(dyn.resources.get(api_version="apps/v1", kind="Deployment"), deployment, policy)
        assert msg and TAG_ONLY in msg
        cronjob = {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "bad"},
            "spec": {
                "schedule": "0 1 * * *",
                "jobTemplate": {
                    "spec": {"template": {"spec": {**pod("x", FOREIGN)["spec"], "restartPolicy": "Never"}}}
                },
            },
        }
        msg = refusal(dyn.resources.get(api_version="batch/v1", kind="CronJob"), cronjob, policy)
        assert msg and FOREIGN in msg

        # Pinned, from allowed registries: admitted for real.
        assert refusal(pods, pod("good", GOOD, init=[GOOD_DB]), policy, dry_run=False) is None
        assert pods.get(name="good", namespace=policy).spec.containers[0].image == GOOD

        # Outside the selected namespaces the policy does not apply.
        other = f"{policy}-other"
        namespaces.create(body={"metadata": {"name": other}})
        try:
            assert refusal(pods, pod("unpinned", TAG_ONLY), other) is None
        finally:
            namespaces.delete(name=other)
    finally:
        namespaces.delete(name=policy)

    off = run_playbook(
        TARGET / "policy.yml", {**role_vars(policy, [GOOD]), "image_policy_admission_enabled": False}, env=env
    )
    assert off.rc == 0 and off.changed == 1, off.stdout
    assert not exists(dyn, "ValidatingAdmissionPolicy", policy, "admissionregistration.k8s.io/v1")


@pytest.mark.parametrize("scanner_format", ["trivy", "grype"])
@pytest.mark.parametrize(
    ("images", "severity", "offenders"),
    [
        ([GOOD, GOOD_DB], "HIGH", []),
        ([GOOD, f"ghcr.io/misp/vulnerable:1{DIGEST}"], "HIGH", [f"ghcr.io/misp/vulnerable:1{DIGEST}"]),
        ([GOOD], "LOW", [GOOD]),
    ],
    ids=["clean", "critical-finding", "low-threshold"],
)
def test_scanner(run_playbook, images, severity, offenders, scanner_format):
    extravars = {
        "image_policy_images": images,
        "image_policy_allowed_registries": ALLOWED,
        "image_policy_scanner_command": SCANNER + (["--grype"] if scanner_format == "grype" else []),
        "image_policy_scanner_format": scanner_format,
        "image_policy_fail_severity": severity,
    }
    run = run_playbook(TARGET / "check.yml", extravars)
    if not offenders:
        assert run.rc == 0, run.stdout
        return
    assert run.rc != 0
    for image in offenders:
        assert f"image_policy: {image} has" in flat(run)
    expected = "CVE-2026-0001 CRITICAL" if severity == "HIGH" else "CVE-2026-1000 LOW"
    assert expected in flat(run)


def test_scanner_failure_names_the_image(run_playbook):
    broken = f"ghcr.io/misp/broken:1{DIGEST}"
    extravars = {
        "image_policy_images": [GOOD, broken],
        "image_policy_allowed_registries": ALLOWED,
        "image_policy_scanner_command": SCANNER,
    }
    run = run_playbook(TARGET / "check.yml", extravars)
    assert run.rc != 0
    assert f"scanner failed on {broken} (rc 1): scanner: cannot pull" in flat(run)
