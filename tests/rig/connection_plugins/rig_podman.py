"""containers.podman.podman with Ansible pipelining, for the rig's podman hosts (test only).

The collection's plugin cannot pipeline: it runs ``podman exec`` without ``-i``, so a module is
copied in and run in five ``podman exec`` calls (home, mkdir, chmod, run, rm), and one call takes
seconds on a loaded machine. With ``-i`` the module goes through stdin in a single call.
Used with ANSIBLE_PIPELINING=true; see docs/testing.md.
"""

from __future__ import annotations

from ansible_collections.containers.podman.plugins.connection import podman

# The plugin loader reads the connection's options from this module.
DOCUMENTATION = podman.DOCUMENTATION


class Connection(podman.Connection):
    transport = "rig_podman"
    has_pipelining = True

    def _podman(self, cmd, cmd_args=None, in_data=None, use_container_id=True):
        if in_data is not None and cmd[0] == "exec":
            cmd = ["exec", "--interactive", *cmd[1:]]
        return super()._podman(cmd, cmd_args, in_data, use_container_id)
