# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs of the collection's Kubernetes modules (internal to this collection)."""

from __future__ import annotations

import copy

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC


def k8s_argspec(spec):
    """kubernetes.core's connection options (kubeconfig, context, host, api_key...) and ``spec``."""
    merged = copy.deepcopy(AUTH_ARG_SPEC)
    merged.update(copy.deepcopy(spec))
    return merged
