"""template lookup: ansible.builtin.template's result, without a deep copy of the task's variables.

The lookups run as a task's templar calls them, by name through Ansible's plugin loader, in a
Python process of their own: the loader finds a collection's plugins only when its collection
finder was installed before anything imported ``ansible_collections``, as other tests do.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

RENDER = r"""
import json, sys
from ansible.errors import AnsibleError
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar, trust_as_template

init_plugin_loader()


class NoCopy:
    # A variable that refuses to be deep-copied, as ansible.builtin.template's lookup would.
    def __deepcopy__(self, memo):
        raise AssertionError("the task's variables were deep-copied")


def render(expression, **variables):
    variables = {"ansible_search_path": [sys.argv[1]], "who": "misp", **variables}
    try:
        rendered = Templar(loader=DataLoader(), variables=variables).template(trust_as_template(expression))
    except AnsibleError as exc:
        rendered = {"error": str(exc)}
    return {"rendered": rendered, "variables": sorted(variables)}


def lookup(plugin, name, extra=""):
    return "{{ lookup('%s', '%s'%s) }}" % (plugin, name, extra)


print(json.dumps({
    plugin: {
        "extra": render(lookup(plugin, "page.j2", ", template_vars={'extra': 1}")),
        "uncopyable": render(lookup(plugin, "page.j2"), unused=NoCopy()),
        "missing": render(lookup(plugin, "absent.j2")),
    }
    for plugin in ("cti.misp_platform.template", "ansible.builtin.template")
}))
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    search_path = tmp_path_factory.mktemp("play")
    (search_path / "templates").mkdir()
    (search_path / "templates" / "page.j2").write_text(
        "name={{ who }} file={{ template_path | basename }} extra={{ extra | default('none') }}\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", RENDER, str(search_path)], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(done.stdout)


def test_renders_what_the_builtin_lookup_renders(results):
    ours, builtin = results["cti.misp_platform.template"], results["ansible.builtin.template"]
    assert ours["extra"] == builtin["extra"]
    assert ours["extra"]["rendered"] == "name=misp file=page.j2 extra=1\n"


def test_the_tasks_variables_are_neither_deep_copied_nor_changed(results):
    ours = results["cti.misp_platform.template"]["uncopyable"]
    assert ours == {
        "rendered": "name=misp file=page.j2 extra=none\n",
        "variables": ["ansible_search_path", "unused", "who"],
    }
    # What the plugin avoids: the builtin lookup copies every variable, the unused one too.
    builtin = results["ansible.builtin.template"]["uncopyable"]
    assert "the task's variables were deep-copied" in builtin["rendered"]["error"]


def test_a_missing_template_is_named(results):
    error = results["cti.misp_platform.template"]["missing"]["rendered"]["error"]
    assert "The lookup plugin 'cti.misp_platform.template' failed" in error
    assert "the template file absent.j2 could not be found for the lookup" in error
