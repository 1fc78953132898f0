"""Outbound proxy and extra CA certificates (issue 10) on the rig cluster.

misp_common, misp_frontend, misp_workers and misp_cron are applied in a namespace of their own
(Pod Security restricted, so every pod template is admitted) with a proxy that needs credentials
and two generated test CAs (a PEM string and a ConfigMap of the site); misp_config then sets
MISP's Proxy.* settings through the MISP API stand-in. Everything is deleted afterwards.
"""

from __future__ import annotations

import contextlib
import json
import secrets

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.doubles.misp_api import MispApiDouble
from tests.rig.peers._tls import TestCA

pytestmark = [pytest.mark.rig, pytest.mark.slow]

TARGET = "tests/integration/targets/misp_outbound"
KEY = "outbound-admin-key-" + "7" * 21
PROXY_USER = "misp-proxy-user-c4f1"
PROXY_PASSWORD = "proxy-pass-9e3b77d1a0"
BUNDLE = "/etc/misp-ca/ca-certificates.crt"
PROXY = {"host": "proxy.corp.test", "port": 3128, "credentials": True, "no_proxy": [".corp.test", "10.0.0.0/8"]}
INTERNAL = ["localhost", "127.0.0.1", ".svc", ".cluster.local", "misp-db", "misp-redis", "misp-workers"]
PROXY_ENV = ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"]
CA_ENV = {"SSL_CERT_FILE": BUNDLE, "CURL_CA_BUNDLE": BUNDLE, "REQUESTS_CA_BUNDLE": BUNDLE}
# Cron tasks that read only what the image ships (the galaxy, taxonomy... JSON files): they call
# out to nothing, so they get no proxy.
OFFLINE_TASKS = {
    "updategalaxies",
    "updatetaxonomies",
    "updatewarninglists",
    "updatenoticelists",
    "updateobjecttemplates",
}


INLINE_CA = TestCA("cti inline test CA").cert_pem.decode()
# A private key where a certificate belongs, made here so that no key is ever committed.
KEY_PEM = (
    ec.generate_private_key(ec.SECP256R1())
    .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    .decode()
)
SITE_CA = TestCA("cti site test CA").cert_pem.decode()


WORD = secrets.token_hex(16)


def secrets_of(proxy_password=PROXY_PASSWORD):
    word = WORD
    return {
        "database": {"username": "misp", "password": word, "root-password": word},
        "redis": {"password": word},
        "app": {
            "salt": word,
            "encryption-key": word,
            "gpg-passphrase": word,
            "admin-api-key": KEY,
            "uuid": "5f1f0e0c-0a4e-4c43-9d43-3c7f1d5e9a01",
        },
        "supervisor": {"username": "supervisor", "password": word},
        "proxy": {"username": PROXY_USER, "password": proxy_password},
    }


def role_vars(namespace, storage_class, **extra):
    return {
        "misp_namespace": namespace,
        "misp_base_url": "https://misp.outbound.test",
        "misp_secrets_source": "inventory",
        "misp_secrets": secrets_of(),
        "misp_common_files_storage_class": storage_class,
        "misp_common_files_size": "1Gi",
        "misp_frontend_wait": False,
        "misp_common_proxy": PROXY,
        "misp_common_ca_certificates": [INLINE_CA, {"configmap": "site-ca"}],
        **extra,
    }


def flat(run):
    return " ".join((run.stdout + run.stderr).split())


@pytest.fixture(scope="module")
def core(api):
    return client.CoreV1Api(api)


@pytest.fixture(scope="module")
def namespace(api, core):
    """A restricted namespace with a bound static volume for misp-files and ConfigMap site-ca."""
    name = f"cti-outbound-{secrets.token_hex(3)}"
    storage = client.StorageV1Api(api)
    core.create_namespace(
        {
            "metadata": {
                "name": name,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted", "cti-test": "outbound"},
            }
        }
    )
    storage.create_storage_class(
        {"metadata": {"name": name}, "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "Immediate"}
    )
    core.create_persistent_volume(
        {
            "metadata": {"name": name},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteMany"],
                "storageClassName": name,
                "claimRef": {"namespace": name, "name": "misp-files"},
                "hostPath": {"path": f"/tmp/{name}"},
            },
        }
    )
    core.create_namespaced_config_map(name, {"metadata": {"name": "site-ca"}, "data": {"ca.crt": SITE_CA}})
    yield name
    core.delete_namespace(name)
    for delete in (core.delete_persistent_volume, storage.delete_storage_class):
        with contextlib.suppress(ApiException):
            delete(name)


@pytest.fixture(scope="module")
def deployed(run_playbook, env, namespace):
    first = run_playbook(f"{TARGET}/deploy.yml", role_vars(namespace, namespace), env=env, timeout=900)
    assert first.rc == 0, first.stdout[-6000:]
    second = run_playbook(f"{TARGET}/deploy.yml", role_vars(namespace, namespace), env=env, timeout=900)
    return first, second


def pod_specs(api, namespace):
    """(owner name, pod spec) of every MISP Deployment and CronJob in the namespace."""
    apps, batch = client.AppsV1Api(api), client.BatchV1Api(api)
    specs = [(d.metadata.name, d.spec.template.spec) for d in apps.list_namespaced_deployment(namespace).items]
    specs += [
        (c.metadata.name, c.spec.job_template.spec.template.spec)
        for c in batch.list_namespaced_cron_job(namespace).items
    ]
    return specs


def app_containers(spec):
    """The containers running MISP's code; nginx only serves and forwards, it calls out to nothing."""
    return [c for c in spec.containers if c.name != "nginx"]


def test_converges_and_second_run_changes_nothing(deployed):
    first, second = deployed
    assert first.changed > 0
    assert second.rc == 0, second.stdout[-6000:]
    assert second.changed == 0, second.stdout[-6000:]


def test_config_maps_hold_the_ca_and_the_php_settings(deployed, core, namespace):
    cas = core.read_namespaced_config_map("misp-ca-certificates", namespace).data
    assert cas == {"extra-01.crt": INLINE_CA}
    config = core.read_namespaced_config_map("misp-config", namespace).data
    assert f"php_admin_value[openssl.cafile] = {BUNDLE}" in config["php-fpm.conf"]
    assert f"php_admin_value[curl.cainfo] = {BUNDLE}" in config["php-fpm.conf"]
    assert f"openssl.cafile = {BUNDLE}" in config["php-ca.ini"]
    assert f"curl.cainfo = {BUNDLE}" in config["php-ca.ini"]


def test_every_misp_container_gets_the_bundle_and_the_proxy(deployed, api, namespace):
    specs = pod_specs(api, namespace)
    names = {name for name, _spec in specs}
    assert "misp-workers" in names
    assert any(n.startswith("misp-frontend") for n in names)
    assert sum(n.startswith("misp-cron-") for n in names) >= 3, names
    for owner, spec in specs:
        volumes = {v.name: v for v in spec.volumes}
        sources = [s.to_dict() for s in volumes["ca-extra"].projected.sources]
        assert {"name": "misp-ca-certificates"} in [
            {k: v for k, v in (s["config_map"] or {}).items() if v} for s in sources
        ], owner
        site = next(s["config_map"] for s in sources if (s["config_map"] or {}).get("name") == "site-ca")
        assert site["items"] == [{"key": "ca.crt", "path": "configmap-site-ca-ca.crt", "mode": None}]
        assert volumes["ca-bundle"].empty_dir is not None
        (init,) = spec.init_containers
        assert init.command[:2] == ["sh", "-c"]
        assert "/etc/ssl/certs/ca-certificates.crt" in init.command[2]
        assert "> /prepare/ca-bundle/ca-certificates.crt" in init.command[2]
        assert {(m.name, m.mount_path) for m in init.volume_mounts} >= {
            ("ca-extra", "/prepare/ca-extra"),
            ("ca-bundle", "/prepare/ca-bundle"),
        }
        for container in app_containers(spec):
            where = f"{owner}/{container.name}"
            mounts = {m.name: m for m in container.volume_mounts}
            assert mounts["ca-bundle"].mount_path == "/etc/misp-ca", where
            assert mounts["ca-bundle"].read_only is True, where
            env = {e.name: e for e in container.env}
            for name, value in CA_ENV.items():
                assert env[name].value == value, where
            assert env["PHP_INI_SCAN_DIR"].value == ":/etc/misp-k8s", where
            if container.name in OFFLINE_TASKS:
                # Least privilege (docs/identity.md): no proxy account, so no URL naming it either.
                assert not {"MISP_PROXY_USERNAME", "MISP_PROXY_PASSWORD", *PROXY_ENV[:4]} & set(env), where
                continue
            assert env["MISP_PROXY_USERNAME"].value_from.secret_key_ref.to_dict() == {
                "name": "misp-proxy",
                "key": "username",
                "optional": None,
            }, where
            assert env["MISP_PROXY_PASSWORD"].value_from.secret_key_ref.to_dict() == {
                "name": "misp-proxy",
                "key": "password",
                "optional": None,
            }, where
            url = "http://$(MISP_PROXY_USERNAME):$(MISP_PROXY_PASSWORD)@proxy.corp.test:3128"
            for name in PROXY_ENV[:4]:
                assert env[name].value == url, where
            # The credentials' references come before the URL that expands them.
            order = [e.name for e in container.env]
            assert order.index("MISP_PROXY_PASSWORD") < order.index("HTTP_PROXY"), where
            for name in PROXY_ENV[4:]:
                no_proxy = env[name].value.split(",")
                assert set(INTERNAL + PROXY["no_proxy"]) <= set(no_proxy), where


def test_proxy_credentials_only_in_their_secret(deployed, api, core, namespace):
    secret = core.read_namespaced_secret("misp-proxy", namespace)
    assert set(secret.data) == {"username", "password"}
    objects = [cm.data for cm in core.list_namespaced_config_map(namespace).items]
    objects += [spec.to_dict() for _name, spec in pod_specs(api, namespace)]
    text = json.dumps(objects, default=str)
    assert PROXY_PASSWORD not in text
    assert PROXY_USER not in text


def test_misp_config_sets_the_proxy_settings(deployed, run_playbook, env, namespace):
    extravars = role_vars(namespace, namespace, misp_config_check_workers=False)
    with MispApiDouble(api_key=KEY) as misp:
        extravars["misp_config_url"] = misp.url
        # The stand-in listens on loopback, not in a pod.
        extravars["misp_config_port_forward"] = False
        first = run_playbook(f"{TARGET}/config.yml", extravars, env=env, timeout=600)
        assert first.rc == 0, first.stdout[-6000:]
        settings = misp.settings
        assert settings["Proxy.host"] == "proxy.corp.test"
        assert settings["Proxy.port"] == 3128
        assert settings["Proxy.method"] == "Basic"
        assert settings["Proxy.user"] == PROXY_USER
        assert settings["Proxy.password"] == PROXY_PASSWORD
        assert first.changed > 0

        misp.requests.clear()
        second = run_playbook(f"{TARGET}/config.yml", extravars, env={**env, "ANSIBLE_VERBOSITY": "3"}, timeout=600)
        assert second.rc == 0, second.stdout[-6000:]
        assert second.changed == 0, second.stdout[-6000:]
        output = second.stdout + second.stderr + first.stdout + first.stderr
        assert PROXY_PASSWORD not in output
        assert KEY not in output


# (id, variables over role_vars, text the error must hold)
BAD = [
    (
        "host-with-port",
        {"misp_common_proxy": {"host": "proxy.corp.test:3128", "port": 3128}},
        'got "proxy.corp.test:3128"',
    ),
    ("scheme", {"misp_common_proxy": {"host": "http://proxy.corp.test", "port": 3128}}, 'got "http://proxy.corp.test"'),
    (
        "no-port",
        {"misp_common_proxy": {"host": "proxy.corp.test"}},
        'misp_common_proxy.port is required with host "proxy.corp.test"',
    ),
    (
        "port-range",
        {"misp_common_proxy": {"host": "proxy.corp.test", "port": 70000}},
        "misp_common_proxy.port must be a number from 1 to 65535, got 70000",
    ),
    ("method", {"misp_common_proxy": {"host": "proxy.corp.test", "port": 3128, "method": "NTLM"}}, "NTLM"),
    (
        "pem",
        {"misp_common_ca_certificates": [INLINE_CA, KEY_PEM]},
        "misp_common_ca_certificates[1] is not a PEM certificate",
    ),
    (
        "missing-configmap",
        {"misp_common_ca_certificates": [{"configmap": "no-such-ca"}]},
        "ConfigMap no-such-ca not found",
    ),
    ("password-in-url", {"misp_secrets": secrets_of("p@ss/word")}, "holds a character that HTTP_PROXY cannot carry"),
    (
        "base-url",
        {"misp_base_url": "https://misp.outbound.test/"},
        "misp_base_url (misp_common_base_url) must be the public URL of MISP without a trailing slash"
        ' (e.g. https://misp.example.org), got "https://misp.outbound.test/"',
    ),
    (
        "image",
        {"misp_image": {"repository": "misp-core", "tag": ""}},
        'misp_image (misp_common_image) needs repository and a tag or digest, got {"repository": "misp-core"',
    ),
    # misp_common checks the shared values, OIDC, e-mail, proxy and PEM strings in one task.
    (
        "every-problem-at-once",
        {"misp_base_url": "misp.outbound.test", "misp_common_proxy": {"host": "proxy.corp.test"}},
        'got "misp.outbound.test"; misp_common_proxy.port is required with host "proxy.corp.test"',
    ),
]


@pytest.fixture(scope="module")
def empty_namespace(core):
    name = f"cti-outbound-bad-{secrets.token_hex(3)}"
    core.create_namespace({"metadata": {"name": name, "labels": {"cti-test": "outbound"}}})
    yield name
    core.delete_namespace(name)


@pytest.mark.parametrize(("case", "extra", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_fails_naming_it_before_any_change(run_playbook, env, core, empty_namespace, case, extra, expected):
    run = run_playbook(f"{TARGET}/deploy.yml", role_vars(empty_namespace, "none", **extra), env=env, timeout=300)
    assert run.rc != 0, f"{case}: {run.stdout[-3000:]}"
    assert run.changed == 0
    assert expected in flat(run), flat(run)[-3000:]
    assert PROXY_PASSWORD not in run.stdout + run.stderr
    assert [cm.metadata.name for cm in core.list_namespaced_config_map(empty_namespace).items] == ["kube-root-ca.crt"]
    assert core.list_namespaced_secret(empty_namespace).items == []


def test_without_proxy_and_cas_nothing_of_it_remains(deployed, run_playbook, env, api, core, namespace):
    """Runs last: turning both off takes every trace out of the pods."""
    plain = role_vars(namespace, namespace, misp_common_proxy={}, misp_common_ca_certificates=[])
    run = run_playbook(f"{TARGET}/deploy.yml", plain, env=env, timeout=900)
    assert run.rc == 0, run.stdout[-6000:]
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("misp-ca-certificates", namespace)
    assert "php-ca.ini" not in core.read_namespaced_config_map("misp-config", namespace).data
    for owner, spec in pod_specs(api, namespace):
        assert {v.name for v in spec.volumes}.isdisjoint({"ca-extra", "ca-bundle"}), owner
        (init,) = spec.init_containers
        assert init.command == ["cp", "-R", "/var/www/MISP/app/tmp/.", "/prepare/app-tmp/"]
        assert [m.name for m in init.volume_mounts] == ["app-tmp"]
        for container in app_containers(spec):
            names = {e.name for e in container.env}
            assert names.isdisjoint(PROXY_ENV + list(CA_ENV) + ["PHP_INI_SCAN_DIR", "MISP_PROXY_PASSWORD"]), owner
