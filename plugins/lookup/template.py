# Copyright: contributors to cti.misp_platform
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ansible.builtin.template's lookup without its deep copy of every variable."""

from __future__ import annotations

DOCUMENTATION = r"""
name: template
short_description: A file's contents after templating, as ansible.builtin.template's lookup gives them
version_added: 1.0.0
description:
  - Returns, for each template named, the text ansible.builtin.template's lookup returns for it,
    with the same search path (the role's and play's C(templates) directories), the same variables
    (the task's, C(template_path) and the other template variables, O(template_vars)) and the
    same options. It is that lookup's own code.
  - The difference is the cost. ansible.builtin.template deep-copies every variable of the task
    before it adds its own, once per call; with the dozens of variables of a role that is tens of
    milliseconds each time. This lookup hands it a new top-level mapping of the same variables
    instead, which leaves the task's variables as untouched as the copy did.
options:
  _terms:
    description: The templates to render, found as ansible.builtin.template's lookup finds them.
    type: list
    elements: str
    required: true
  variable_start_string:
    description: The string marking the beginning of a print statement.
    type: str
    default: "{{"
  variable_end_string:
    description: The string marking the end of a print statement.
    type: str
    default: "}}"
  comment_start_string:
    description: The string marking the beginning of a comment statement.
    type: str
    default: "{#"
  comment_end_string:
    description: The string marking the end of a comment statement.
    type: str
    default: "#}"
  template_vars:
    description: Further variables for the templates, over the task's.
    type: dict
    default: {}
  trim_blocks:
    description: Whether the first newline after a block tag is removed.
    type: bool
    default: true
seealso:
  - plugin: ansible.builtin.template
    plugin_type: lookup
"""

EXAMPLES = r"""
- name: Put a rendered script into a ConfigMap
  cti.misp_platform.k8s_apply:
    definitions:
      - apiVersion: v1
        kind: ConfigMap
        metadata:
          name: misp-backup
          namespace: misp
        data:
          backup.sh: "{{ lookup('cti.misp_platform.template', 'backup.sh.j2') }}"
"""

RETURN = r"""
_raw:
  description: The rendered text of each template.
  type: list
  elements: str
"""

from ansible.plugins.lookup.template import LookupModule as TemplateLookup


class _TopLevelCopy(dict):
    """The task's variables, whose deep copy is a shallow one.

    ansible.builtin.template's lookup copies its variables only to add the template ones
    (template_path...) without touching the task's; a new top-level mapping does that too.
    """

    def __deepcopy__(self, memo):
        return dict(self)


class LookupModule(TemplateLookup):
    def run(self, terms, variables=None, **kwargs):
        return super().run(terms, _TopLevelCopy(variables or {}), **kwargs)
