"""k8s_secret_data and missing_secret_keys: Secrets read one way, missing keys named without values."""

from __future__ import annotations

import base64

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.cti.misp_platform.plugins.filter.k8s_secret_data import k8s_secret_data
from ansible_collections.cti.misp_platform.plugins.filter.missing_secret_keys import missing_secret_keys


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


INFO = {"resources": [{"kind": "Secret", "data": {"username": b64("supervisor"), "password": b64("pässwörd")}}]}


def test_decodes_the_first_objects_data():
    assert k8s_secret_data(INFO) == {"username": "supervisor", "password": "pässwörd"}


def test_keeps_base64_when_asked():
    assert k8s_secret_data(INFO, decode=False) == INFO["resources"][0]["data"]


LISTING = {
    "resources": [
        {"kind": "Secret", "metadata": {"name": "misp-redis"}, "data": {"password": b64("r")}},
        {"kind": "Secret", "metadata": {"name": "other"}, "data": {"password": b64("not asked for")}},
        {"kind": "Secret", "metadata": {"name": "misp-database"}, "data": {"password": b64("d")}},
    ]
}


def test_names_pick_secrets_of_a_listing_by_name_and_a_missing_one_is_empty():
    names = {"database": "misp-database", "redis": "misp-redis", "app": "misp-app"}
    assert k8s_secret_data(LISTING, names=names) == {
        "database": {"password": "d"},
        "redis": {"password": "r"},
        "app": {},
    }
    assert k8s_secret_data(LISTING, decode=False, names={"redis": "misp-redis"}) == {"redis": {"password": b64("r")}}


def test_names_that_are_not_a_mapping_are_named():
    with pytest.raises(AnsibleFilterError, match=r"names must map keys to Secret names, got \['misp-redis'\]"):
        k8s_secret_data(LISTING, names=["misp-redis"])


@pytest.mark.parametrize(
    "info",
    [
        {"resources": []},
        {"resources": [{"kind": "Secret"}]},
        {"resources": [{"data": None}]},
        {"skipped": True, "changed": False},
    ],
)
def test_a_missing_secret_or_one_without_data_is_empty(info):
    assert k8s_secret_data(info) == {}


@pytest.mark.parametrize(
    ("info", "message"),
    [
        ({"resources": [{"data": {"token": "not base64!"}}]}, "key 'token' is not base64-encoded UTF-8 text"),
        ({"resources": [{"data": {"blob": b64("x")[:-1] + "\u00e9"}}]}, "key 'blob' is not base64-encoded UTF-8 text"),
        ({"resources": [{"data": {"bin": base64.b64encode(b"\xff\xfe").decode()}}]}, "key 'bin' is not base64"),
        (["not", "a", "result"], "expected a kubernetes.core.k8s_info result"),
        ({"resources": "x"}, "expected a kubernetes.core.k8s_info result"),
    ],
)
def test_bad_input_is_named_without_the_value(info, message):
    with pytest.raises(AnsibleFilterError) as err:
        k8s_secret_data(info)
    assert message in str(err.value)
    assert "not base64!" not in str(err.value)


WANTED = {"app": ["salt", "uuid"], "redis": ["password"], "supervisor": ["username", "password"]}


def test_missing_keys_in_order_with_the_label():
    data = {"app": {"salt": "s", "uuid": ""}, "supervisor": {"username": "u", "password": None}}
    assert missing_secret_keys(WANTED, data) == ["app.uuid", "redis.password", "supervisor.password"]
    assert missing_secret_keys(WANTED, data, "Secret misp-{name} key {key}")[0] == "Secret misp-app key uuid"


def test_nothing_missing():
    data = {
        "app": {"salt": "s", "uuid": "u"},
        "redis": {"password": 1234},
        "supervisor": {"username": "u", "password": "p"},
    }
    assert missing_secret_keys(WANTED, data) == []


@pytest.mark.parametrize(
    ("wanted", "data", "message"),
    [
        (["app"], {}, "expected {name: [keys]}, got ['app']"),
        ({"app": "salt"}, {}, "expected {name: [keys]}"),
        (WANTED, ["x"], "data must be {name: {key: value}}, got a list"),
        (WANTED, {"app": "s3cr3t"}, "data['app'] must be a mapping of keys to values"),
    ],
)
def test_bad_shapes_are_refused(wanted, data, message):
    with pytest.raises(AnsibleFilterError) as err:
        missing_secret_keys(wanted, data)
    assert message in str(err.value)
    assert "s3cr3t" not in str(err.value)
