#!/usr/bin/python
# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: misp_settings
short_description: Set MISP server settings through the REST API, writing only what differs
version_added: 0.1.0
description:
  - Reads the current values of the given MISP server settings, then writes each setting whose
    value differs with one C(POST /servers/serverSettingsEdit/<name>). When every value already
    matches, nothing is written.
  - Every value is checked against the setting's definition (type, allowed options, CLI-only)
    before anything is written, and sent with the JSON type the setting declares. The REST edit
    of MISP casts values before validating them, so the string V("false") would save as V(true)
    and V("abc") as V(0); this module sends V("false") as the JSON boolean V(false) and refuses
    V("abc") for a numeric setting.
author:
  - cti.misp_platform developers (@cti)
options:
  settings:
    description:
      - Settings to set, as a mapping of setting name (for example V(MISP.baseurl)) to value.
      - Boolean settings take V(true)/V(false) (or V(yes), V(no), V(1), V(0)); numeric settings
        whole numbers (or strings of digits); string settings strings, which are trimmed as MISP
        trims them. Settings with options take one of the option keys.
      - Values are shown in the output and the diff; put secrets in O(secret_settings).
      - Settings named like a secret, that is ending in C(password), C(passphrase), C(passwd),
        C(secret), C(salt), C(token) or C(key) (C(Security.salt), C(Security.encryption_key),
        C(Plugin.Cortex_authkey), C(SimpleBackgroundJobs.redis_password)...), are treated as if
        given in O(secret_settings). Their values, of any type, are masked from the start of the
        run, also in the module's arguments shown at C(-vvv) and when MISP cannot be read.
    type: dict
    default: {}
  secret_settings:
    description:
      - Like O(settings), for values that must never be logged or shown (passwords, keys,
        C(Security.salt)). The values are masked as C(*****) in the diff and in errors.
      - A setting may appear in O(settings) or in O(secret_settings), not in both.
    type: dict
    default: {}
  force:
    description:
      - MISP's C(force) flag of the edit. With V(true) MISP saves a value even when the setting's
        own test fails (for example V(true) for C(MISP.log_paranoid), which MISP advises against).
    type: bool
    default: false
  redacted:
    description:
      - What to do with settings MISP redacts (passwords, C(Security.salt),
        C(Security.encryption_key)...). MISP never reveals their values, so they cannot be compared.
      - V(skip) leaves them untouched, lists them in RV(redacted_settings) and warns, naming each
        one left unwritten and this option.
      - V(write) writes them on every run (not in check mode) and lists them in
        RV(redacted_written). Because the module cannot tell whether the value differed, these
        writes do not make the task C(changed); use it when (re)installing a secret.
    type: str
    choices: [skip, write]
    default: skip
  read_strategy:
    description:
      - How current values are read.
      - V(each) sends one C(GET /servers/getSetting/<name>) per setting.
      - V(bulk) sends one C(GET /servers/serverSettings), which lists every setting but also runs
        all of MISP's diagnostics (workers, Redis, files, GnuPG...), a slow request on a real
        instance.
      - V(auto) reads each setting when there are at most 10, in bulk above that.
    type: str
    choices: [auto, each, bulk]
    default: auto
extends_documentation_fragment:
  - cti.misp_platform.misp_api
  - cti.misp_platform.port_forward
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the current values and reports what would be written; writes nothing.
  diff_mode:
    support: full
    details: Before and after values of the settings written; secret and redacted values show as C(*****).
  platform:
    platforms: posix
notes:
  - O(port_forward) carries the connections to O(url), for a controller outside the cluster
    network that the NetworkPolicies keep away from MISP's frontends.
  - Reads cost requests, so O(read_strategy=auto) picks the cheaper of the two ways MISP offers.
    A single C(getSetting) is fast; the bulk C(serverSettings) read costs roughly as much as ten
    of them because MISP runs its diagnostics while answering, but it stays one request however
    many settings are managed.
  - Writes cost one request per setting that differs; MISP has no bulk edit.
  - Errors found before writing (unknown names, values of the wrong type, values outside the
    options, CLI-only settings that differ) are all reported at once and nothing is written. If
    MISP refuses an edit, the settings written before it stay written; the message names them
    (or says that nothing was written), and RV(changed_settings) and RV(redacted_written) of the
    failure list them, with RV(failed_setting).
  - Settings MISP marks CLI-only cannot be changed through the API (MISP answers HTTP 405). The
    module refuses, before writing anything, such a setting that differs, and one whose value
    MISP hides with O(redacted=write). It knows the CLI-only settings of MISP 2.5
    (C(GnuPG.binary), C(MISP.attachments_dir), C(MISP.ca_path), C(MISP.python_bin),
    C(MISP.system_setting_db), C(MISP.tmpdir), C(Security.disable_local_feed_access),
    C(Security.encryption_key), C(Security.rest_client_enable_arbitrary_urls)) besides what
    MISP's own definition of a setting says; with O(redacted=skip) a redacted CLI-only setting is
    left unwritten with a warning.
  - Requires a site administrator's API key.
seealso:
  - name: MISP server settings
    description: Settings and their meaning, in the MISP book.
    link: https://www.circl.lu/doc/misp/administration/#server-settings-and-diagnostics
"""

EXAMPLES = r"""
- name: Enable the background jobs of MISP
  cti.misp_platform.misp_settings:
    url: https://misp.example.org
    api_key: "{{ misp_api_key }}"
    settings:
      MISP.background_jobs: true
      SimpleBackgroundJobs.enabled: true
      SimpleBackgroundJobs.redis_host: redis.misp.svc
      SimpleBackgroundJobs.redis_port: 6379
      SimpleBackgroundJobs.supervisor_host: misp-workers.misp.svc
    secret_settings:
      SimpleBackgroundJobs.supervisor_password: "{{ misp_supervisor_password }}"
    redacted: write

- name: Preview the changes
  cti.misp_platform.misp_settings:
    url: https://misp.example.org
    api_key: "{{ misp_api_key }}"
    ca_path: /etc/pki/misp-ca.pem
    settings:
      MISP.baseurl: https://misp.example.org
      Session.timeout: 60
  check_mode: true
  diff: true
  register: preview

- name: From a controller outside the cluster, through the API server (RBAC pods/portforward)
  cti.misp_platform.misp_settings:
    url: http://misp-frontend.misp.svc
    api_key: "{{ misp_api_key }}"
    port_forward:
      namespace: misp
      service: misp-frontend
      kubeconfig: ~/.kube/config
    settings:
      MISP.disable_emailing: false
"""

RETURN = r"""
changed_settings:
  description:
    - Settings written because their value differed (in check mode, those that would be).
    - When a write fails, those written before it.
  returned: success, and when a write fails
  type: list
  elements: str
  sample: [MISP.baseurl, Session.timeout]
unchanged_settings:
  description: Settings that already had the wanted value.
  returned: success
  type: list
  elements: str
  sample: [MISP.live]
redacted_settings:
  description: Requested settings whose value MISP hides, so they could not be compared.
  returned: success
  type: list
  elements: str
  sample: [Security.salt]
redacted_written:
  description:
    - Redacted settings written because of O(redacted=write) (in check mode, those that would be).
  returned: success, and when a write fails
  type: list
  elements: str
  sample: [Security.salt]
invalid_settings:
  description: Why each refused setting was refused; nothing was written.
  returned: when a setting is refused before writing
  type: dict
  sample: {MISP.live: "expects a boolean (true/false), got 'maybe'", MISP.nope: unknown setting}
failed_setting:
  description: The setting MISP refused to write.
  returned: when MISP refuses an edit
  type: str
  sample: MISP.baseurl
read_strategy:
  description: How current values were read, V(each) or V(bulk).
  returned: success
  type: str
  sample: each
requests:
  description: Number of requests sent to MISP, by method.
  returned: success
  type: dict
  contains:
    get:
      description: Read requests.
      type: int
      sample: 3
    post:
      description: Write requests.
      type: int
      sample: 1
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cti.misp_platform.plugins.module_utils._misp_settings import argument_spec, run_module


def main():
    spec, checks = argument_spec()
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True, **checks)
    run_module(module)


if __name__ == "__main__":
    main()
