# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""community.hashi_vault's read modules run by their own code in the controller (internal to
this collection): see _in_controller.py for why.

A community.hashi_vault module's ``run_module`` makes its ``HashiVaultModule`` (an AnsibleModule
that reads its arguments from a module process's input) itself. For the length of that call, the
name stands for a constructor that returns a ControllerModule with what HashiVaultModule adds
(helper, option adapter, connection options, authenticator); the rest is the module's own code:
connection, authentication, the request, its messages and result.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar

from ansible.utils.display import Display
from ansible_collections.community.hashi_vault.plugins.module_utils._authenticator import HashiVaultAuthenticator
from ansible_collections.community.hashi_vault.plugins.module_utils._connection_options import (
    HashiVaultConnectionOptions,
)
from ansible_collections.community.hashi_vault.plugins.module_utils._hashi_vault_common import (
    HashiVaultHelper,
    HashiVaultOptionAdapter,
)
from ansible_collections.community.hashi_vault.plugins.module_utils._hashi_vault_module import HashiVaultModule

from ansible_collections.cti.misp_platform.plugins.plugin_utils._in_controller import (
    ControllerModule,
    InControllerAction,
)

try:
    # Imported with the action plugin by the controller's main process, so its forks have it.
    import hvac  # noqa: F401  pylint: disable=unused-import

    HAS_HVAC = True
except ImportError:
    HAS_HVAC = False

display = Display()


class _VaultModule(ControllerModule):
    """A ControllerModule with what HashiVaultModule adds to AnsibleModule, made the same way."""

    def __init__(self, params, check_mode, diff, no_log_values):
        super().__init__(params, check_mode, diff, no_log_values)
        self.helper = HashiVaultHelper()
        self.adapter = HashiVaultOptionAdapter.from_dict(self.params)
        # Retries warn as the module's do.
        retry_callback = partial(HashiVaultModule._generate_retry_callback, self)  # pylint: disable=protected-access
        self.connection_options = HashiVaultConnectionOptions(
            option_adapter=self.adapter, retry_callback_generator=retry_callback
        )
        self.authenticator = HashiVaultAuthenticator(
            option_adapter=self.adapter, warning_callback=self.warn, deprecate_callback=self.deprecate
        )

    def deprecate(self, msg, version=None, date=None, collection_name=None):
        display.deprecated(msg, version=version, date=date, collection_name=collection_name)


class _Constructor:
    """What ``HashiVaultModule`` names while a module's run_module runs: the same argument specs,
    and instead of a new AnsibleModule, the ControllerModule made for the task."""

    generate_argspec = staticmethod(HashiVaultModule.generate_argspec)

    def __init__(self, module, expected_spec):
        self._module = module
        self._expected_spec = expected_spec

    def __call__(self, argument_spec, **kwargs):
        if argument_spec != self._expected_spec:
            # A release of community.hashi_vault whose module takes other options than the
            # arguments were checked against.
            raise RuntimeError("the module's argument spec is not the one its arguments were checked against")
        return self._module


class VaultInControllerAction(InControllerAction):
    """Runs the community.hashi_vault module ``MODULE`` (Python module ``CORE``, options
    ``OPTIONS`` besides the connection and authentication ones) in the controller on a local
    connection with the hvac library, on its host otherwise."""

    CONTROLLER_MODULE = _VaultModule
    CORE = None
    OPTIONS: ClassVar[dict] = {}

    def argument_spec(self):
        return HashiVaultModule.generate_argspec(**self.OPTIONS), {}

    def in_controller(self):
        # Without the library the module reports it.
        return super().in_controller() and HAS_HVAC

    def entry_point(self, module):
        self.CORE.HashiVaultModule = _Constructor(module, self.argument_spec()[0])
        try:
            self.CORE.run_module()
        finally:
            self.CORE.HashiVaultModule = HashiVaultModule
