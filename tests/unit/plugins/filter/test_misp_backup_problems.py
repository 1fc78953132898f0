"""The backup settings beyond the argument spec: each bad one named, S3 credentials never shown."""

from __future__ import annotations

import pytest

from ansible_collections.cti.misp_platform.plugins.filter.misp_backup_problems import (
    FilterModule,
    misp_backup_problems,
)

GOOD = {
    "namespace": "misp",
    "target": "pvc",
    "schedule": "15 1 * * *",
    "keep": 7,
    "keep_days": 30,
    "database_name": "misp",
    "database_password_key": "root-password",
    "s3_endpoint": "",
    "s3_bucket": "",
    "s3_credentials": {},
    "longhorn_jobs_enabled": False,
    "longhorn_snapshot_schedule": "0 * * * *",
    "longhorn_backup_schedule": "30 1 * * *",
}
S3 = {"target": "s3", "s3_endpoint": "https://s3.example.org", "s3_bucket": "misp-backups"}
SECRET = "wJalrXUtnFEMI/K7MDENG"


def problems(**change):
    return misp_backup_problems({**GOOD, **change})


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"keep": "1", "keep_days": "0", "database_password_key": "password"},
        S3,
        {**S3, "s3_credentials": {"access_key_id": "AKIA", "secret_access_key": SECRET}},
        # Checked only with the target or the jobs that use them.
        {"s3_endpoint": "not a url", "longhorn_snapshot_schedule": "hourly"},
        {"longhorn_jobs_enabled": True},
    ],
)
def test_usable_settings(change):
    assert problems(**change) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"namespace": "Misp"}, 'misp_backup_namespace must be a DNS label, got "Misp"'),
        ({"target": "nfs"}, 'misp_backup_target must be pvc or s3, got "nfs"'),
        ({"schedule": "@daily"}, 'misp_backup_schedule must be five cron fields, got "@daily"'),
        ({"keep": 0}, "misp_backup_keep must be a number of at least 1, got 0"),
        ({"keep": True}, "misp_backup_keep must be a number of at least 1, got true"),
        ({"keep_days": -1}, "misp_backup_keep_days must be a number of at least 0, got -1"),
        ({"database_name": "misp;drop"}, 'misp_backup_database_name must be letters, digits and _, got "misp;drop"'),
        (
            {"database_password_key": "pass"},
            "misp_backup_database_password_key must be a key of the Secret misp-database (password or root-password),"
            ' got "pass"',
        ),
        (
            {**S3, "s3_endpoint": "s3.example.org"},
            'misp_backup_s3_endpoint must be an http(s) URL with misp_backup_target s3, got "s3.example.org"',
        ),
        (
            {**S3, "s3_bucket": "Misp_Backups"},
            'misp_backup_s3_bucket must be an S3 bucket name with misp_backup_target s3, got "Misp_Backups"',
        ),
        (
            {**S3, "s3_credentials": {"access_key_id": "AKIA", "secret": SECRET}},
            "misp_backup_s3_credentials must be empty or hold access_key_id and secret_access_key,"
            ' got keys ["access_key_id", "secret"]',
        ),
        (
            {**S3, "s3_credentials": SECRET},
            "misp_backup_s3_credentials must be empty or hold access_key_id and secret_access_key, got a str",
        ),
        (
            {"longhorn_jobs_enabled": True, "longhorn_backup_schedule": "daily"},
            "misp_backup_longhorn_backup_schedule must be five cron fields with misp_backup_longhorn_jobs_enabled,"
            ' got "daily"',
        ),
    ],
)
def test_each_bad_setting_is_named(change, message):
    assert problems(**change) == [message]
    assert SECRET not in message


def test_every_problem_is_reported_at_once():
    found = problems(namespace="", schedule="", keep=0, **{**S3, "s3_bucket": ""})
    assert [message.split(" ", 1)[0] for message in found] == [
        "misp_backup_namespace",
        "misp_backup_schedule",
        "misp_backup_keep",
        "misp_backup_s3_bucket",
    ]


def test_filter_is_registered():
    assert FilterModule().filters() == {"misp_backup_problems": misp_backup_problems}
