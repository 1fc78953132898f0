# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is wrong with the backup settings beyond what the role's argument spec says."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from ansible_collections.cti.misp_platform.plugins.plugin_utils._patterns import DNS_LABEL, whole_number

DOCUMENTATION = r"""
name: misp_backup_problems
short_description: What is wrong with the settings of MISP's backups
version_added: 1.0.0
description:
  - Checks the settings misp_backup and misp_restore share and returns one message per problem,
    each naming the variable and the bad value; empty when they are usable. The S3 credentials
    are never shown, only their keys.
  - The namespace is a DNS label; the target V(pvc) or V(s3); the schedule five cron fields; at
    least one backup is kept (misp_backup_keep) and misp_backup_keep_days is 0 or more; the database
    name holds letters, digits and C(_) only; the password key is a key of Secret misp-database
    (V(password) or V(root-password)).
  - With the target V(s3), the endpoint is an http(s) URL, the bucket an S3 bucket name and the
    credentials empty or with C(access_key_id) and C(secret_access_key). With the Longhorn
    recurring jobs turned on, both their schedules are five cron fields.
options:
  _input:
    description:
      - The settings, each under its variable's name without the C(misp_backup_) prefix
        (C(namespace), C(target), C(schedule), C(keep), C(keep_days), C(database_name),
        C(database_password_key), C(s3_endpoint), C(s3_bucket), C(s3_credentials),
        C(longhorn_jobs_enabled), C(longhorn_snapshot_schedule), C(longhorn_backup_schedule)).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Check the backup settings
  ansible.builtin.assert:
    that: __problems | length == 0
    fail_msg: "{{ __problems | join('; ') }}."
  vars:
    __problems: >-
      {{ {'namespace': misp_backup_namespace, 'target': misp_backup_target, 'schedule': misp_backup_schedule,
          'keep': misp_backup_keep, 'keep_days': misp_backup_keep_days}
         | cti.misp_platform.misp_backup_problems }}
"""

RETURN = r"""
_value:
  description: One message per problem, each naming the bad value; empty when there is none.
  type: list
  elements: str
"""

DATABASE_NAME = re.compile(r"^[A-Za-z0-9_]+$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
CREDENTIAL_KEYS = ("access_key_id", "secret_access_key")


def _cron(value):
    return isinstance(value, str) and len(value.split()) == 5


def misp_backup_problems(settings):
    """Messages naming each bad backup setting; empty when they are usable."""
    get = settings.get
    problems = []

    def bad(name, rule):
        problems.append(f"misp_backup_{name} must be {rule}, got {json.dumps(get(name), default=str)}")

    if not isinstance(get("namespace"), str) or not DNS_LABEL.match(get("namespace")):
        bad("namespace", "a DNS label")
    if get("target") not in ("pvc", "s3"):
        bad("target", "pvc or s3")
    if not _cron(get("schedule")):
        bad("schedule", "five cron fields")
    keep, keep_days = whole_number(get("keep")), whole_number(get("keep_days"))
    if keep is None or keep < 1:
        bad("keep", "a number of at least 1")
    if keep_days is None:
        bad("keep_days", "a number of at least 0")
    if not isinstance(get("database_name"), str) or not DATABASE_NAME.match(get("database_name")):
        bad("database_name", "letters, digits and _")
    if get("database_password_key") not in ("password", "root-password"):
        bad("database_password_key", "a key of the Secret misp-database (password or root-password)")
    if get("target") == "s3":
        if not isinstance(get("s3_endpoint"), str) or not re.match(r"^https?://", get("s3_endpoint")):
            bad("s3_endpoint", "an http(s) URL with misp_backup_target s3")
        if not isinstance(get("s3_bucket"), str) or not BUCKET.match(get("s3_bucket")):
            bad("s3_bucket", "an S3 bucket name with misp_backup_target s3")
        credentials = get("s3_credentials") or {}
        keys = sorted(credentials) if isinstance(credentials, Mapping) else None
        # Only the keys are shown, never the credentials.
        if keys is None or (keys and not set(CREDENTIAL_KEYS) <= set(keys)):
            problems.append(
                "misp_backup_s3_credentials must be empty or hold access_key_id and secret_access_key,"
                f" got {'keys ' + json.dumps(keys) if keys is not None else 'a ' + type(credentials).__name__}"
            )
    if get("longhorn_jobs_enabled"):
        for name in ("longhorn_snapshot_schedule", "longhorn_backup_schedule"):
            if not _cron(get(name)):
                bad(name, "five cron fields with misp_backup_longhorn_jobs_enabled")
    return problems


class FilterModule:
    def filters(self):
        return {"misp_backup_problems": misp_backup_problems}
