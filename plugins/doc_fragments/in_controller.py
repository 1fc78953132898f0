# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attributes of the modules whose action plugin runs them in the controller on a local connection
(plugin_utils/_in_controller.py); used with ansible.builtin.action_common_attributes(.flow),
which describe them."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  platform:
    platforms: posix
"""

    # A module that only reads.
    READ_ONLY = r"""
attributes:
  check_mode:
    support: full
    details: It only reads.
  diff_mode:
    support: none
"""
