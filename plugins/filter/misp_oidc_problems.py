# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is wrong with misp_common_oidc beyond what the role's argument spec says."""

from __future__ import annotations

import json
import re

DOCUMENTATION = r"""
name: misp_oidc_problems
short_description: What is wrong with misp_common_oidc
version_added: 1.0.0
description:
  - Checks the OIDC settings of the MISP roles (the OidcAuth block of config.php) and returns one
    message per problem, each naming the key and the bad value; empty when OIDC is off (the
    settings are empty) or usable. The settings hold no secret, so the values can be printed.
  - Leaves unknown keys (a C(client_secret) among them) and the choices of C(authentication_method)
    and C(code_challenge_method) to the role's argument spec, which refuses them first.
  - C(provider_url) and C(issuer) (when given) are http(s) URLs, C(client_id) a non-empty string,
    C(role_mapper) a non-empty mapping of IdP roles to MISP role ids 1 to 6 (integers),
    C(scopes) a list, and C(client_secret_secret), when given, the reference of the conventions.
options:
  _input:
    description: misp_common_oidc.
    type: raw
    required: true
  secret:
    description: The Secret reference C({name, key}) of the client secret (misp_common_oidc_secret).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Check the OIDC settings
  ansible.builtin.assert:
    that: __problems | length == 0
    fail_msg: "{{ __problems | join('; ') }}."
  vars:
    __problems: "{{ misp_common_oidc | cti.misp_platform.misp_oidc_problems(misp_common_oidc_secret) }}"
"""

RETURN = r"""
_value:
  description: One message per problem, each naming the key and the bad value; empty when there is none.
  type: list
  elements: str
"""

URL = re.compile(r"^https?://[^/\s]+(/\S*)?$")
ROLE_IDS = range(1, 7)
VAR = "misp_common_oidc"


def _is_role_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value in ROLE_IDS


def misp_oidc_problems(oidc, secret):
    """Messages naming each bad value of misp_common_oidc; empty when OIDC is off or usable."""
    if not oidc:
        return []
    if not isinstance(oidc, dict):
        return [f"{VAR} (keycloak_misp_oidc) must be a mapping, got {oidc}"]
    problems = []
    for key in ("provider_url", "issuer"):
        if key in oidc or key == "provider_url":
            value = oidc.get(key, "")
            if not URL.match(str(value)):
                problems.append(f"{VAR}.{key} must be an http(s) URL, got '{value}'")
    client_id = oidc.get("client_id", "")
    if not isinstance(client_id, str) or not client_id:
        problems.append(f"{VAR}.client_id must be a non-empty string, got '{client_id}'")
    mapper = oidc.get("role_mapper", {})
    if not isinstance(mapper, dict) or not mapper:
        given = mapper if "role_mapper" in oidc else "nothing"
        problems.append(f"{VAR}.role_mapper must map IdP roles to MISP role ids, got {given}")
    else:
        problems += [
            f"{VAR}.role_mapper[{role}] is {role_id}, not a MISP role id (1..6)"
            for role, role_id in mapper.items()
            if not _is_role_id(role_id)
        ]
    if "scopes" in oidc and not isinstance(oidc["scopes"], list):
        problems.append(f"{VAR}.scopes must be a list, got {oidc['scopes']}")
    if oidc.get("client_secret_secret", secret) != secret:
        problems.append(
            f"{VAR}.client_secret_secret must be {json.dumps(secret)} (fixed by the conventions), "
            f"got {json.dumps(oidc['client_secret_secret'])}"
        )
    return problems


class FilterModule:
    def filters(self):
        return {"misp_oidc_problems": misp_oidc_problems}
