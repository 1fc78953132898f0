"""The contract between the layers is written once: in plugins/plugin_utils/_conventions.py.

Roles, playbooks and docs read it (lookup cti.misp_platform.conventions) instead of repeating it;
a copy that comes back is found here by its literal text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.cti.misp_platform.plugins.plugin_utils._conventions import (
    BASE_SECRETS,
    CONVENTIONS,
    SECRETS,
    SERVICES,
    convention,
)

REPO = Path(__file__).resolve().parents[4]

# Literal copies of the contract in task, vars and template files. Names that a role gives its own
# objects (a ServiceAccount misp-redis, say) are not Secret references and are not matched.
COPIES = {
    "a label of the contract": re.compile(
        r"""app\.kubernetes\.io/part-of['"]?\s*[:=]\s*['"]?misp\b|managed-by['"]?\s*:\s*['"]?cti\.misp_platform"""
    ),
    "a Secret name of the contract": re.compile(
        r"""(secretName|k8s_secret)['"]?\s*:\s*['"]?misp-("""
        + "|".join(SECRETS)
        + r""")(?![-\w])|secretKeyRef['"]?\s*:\s*\{\s*['"]?name['"]?\s*:\s*['"]?misp-"""
    ),
    "the restart annotation": re.compile(r"kubectl\.kubernetes\.io/restartedAt"),
}


def contract_readers():
    for top in ("roles", "playbooks"):
        for path in sorted((REPO / top).rglob("*")):
            if path.suffix not in (".yml", ".yaml", ".j2") or path.name == "argument_specs.yml":
                continue
            yield path


def test_no_role_or_playbook_copies_the_contract():
    copies = [
        f"{path.relative_to(REPO)}:{number}: {what}: {line.strip()}"
        for path in contract_readers()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if not line.lstrip().startswith(("#", "{#"))
        for what, pattern in COPIES.items()
        if pattern.search(line)
    ]
    assert copies == [], "read these from lookup('cti.misp_platform.conventions', ...):\n" + "\n".join(copies)


def test_the_scan_finds_a_copy():
    # The patterns above are what the test above relies on: each finds the copy it names.
    assert COPIES["a label of the contract"].search("    app.kubernetes.io/part-of: misp")
    assert COPIES["a label of the contract"].search("      - app.kubernetes.io/part-of=misp")
    assert COPIES["a label of the contract"].search("{'app.kubernetes.io/managed-by': 'cti.misp_platform'}")
    assert COPIES["a Secret name of the contract"].search("secretName: misp-database")
    assert COPIES["a Secret name of the contract"].search("{secretKeyRef: {name: misp-app, key: salt}}")
    assert COPIES["a Secret name of the contract"].search("    k8s_secret: misp-oidc")
    assert not COPIES["a Secret name of the contract"].search("secretName: misp-database-account")


def test_vault_generates_exactly_the_keys_of_each_secret():
    vault_vars = yaml.safe_load((REPO / "roles/vault/vars/main.yml").read_text())
    delivered = [entry for entry in vault_vars["__vault_secrets"] if entry["k8s_secret"]]
    assert {entry["name"]: list(entry["fields"]) for entry in delivered} == {
        short: SECRETS[short]["data_keys"] for short in (*BASE_SECRETS, "oidc")
    }
    # Each delivered Secret's name is the convention's, read by the entry's own short name.
    assert [entry["k8s_secret"] for entry in delivered] == [
        f"{{{{ __vault_k8s_secrets.{entry['name']}.name }}}}" for entry in delivered
    ]


def test_the_docs_point_at_the_contract_instead_of_repeating_it():
    development = (REPO / "docs/development.md").read_text()
    assert "plugins/plugin_utils/_conventions.py" in development
    for secret in SECRETS.values():
        assert f"| `{secret['name']}` |" not in development
    for service in SERVICES.values():
        assert f"| `{service['name']}` |" not in development


def test_every_convention_is_documented_by_the_lookup():
    doc = yaml.safe_load(
        re.search(r'DOCUMENTATION = r"""(.*?)"""', (REPO / "plugins/lookup/conventions.py").read_text(), re.S).group(1)
    )
    described = " ".join(doc["description"])
    assert [name for name in CONVENTIONS if f"C({name})" not in described] == []


def test_an_unknown_convention_is_named():
    with pytest.raises(KeyError, match="unknown convention 'label'"):
        convention("label")
