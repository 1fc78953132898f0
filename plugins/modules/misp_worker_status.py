#!/usr/bin/python
# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: misp_worker_status
short_description: Report, start or restart MISP's background workers through supervisord
version_added: 0.1.0
description:
  - Reads the processes of MISP's C(misp-workers) group from supervisord's XML-RPC API, the
    same API MISP itself uses (C(SimpleBackgroundJobs)), and judges each queue healthy when it
    has at least the wanted number of C(RUNNING) processes. By default every process the group
    configures for MISP's queues must run, see O(queues); dead and stopped processes are
    reported per queue.
  - With O(state=running), starts the workers of the listed queues that are C(STOPPED),
    C(EXITED) or C(FATAL) and waits until every listed queue is healthy.
  - With O(state=restarted), stops the whole group and starts it again, as MISP's
    C(restartWorkers) does, and waits until every listed queue is healthy.
  - Optionally reads C(GET /servers/getWorkers) from the MISP API as a second opinion. It is
    reported, never used to judge health, see the notes.
author:
  - cti.misp_platform developers (@cti)
options:
  state:
    description:
      - V(present) only reports.
      - V(running) starts the workers of the listed queues that are not running, then waits.
      - V(restarted) stops and starts every process of the group, then waits.
    type: str
    choices: [present, running, restarted]
    default: present
  group:
    description:
      - supervisord process group of the workers (MISP's C(misp-workers)).
    type: str
    default: misp-workers
  queues:
    description:
      - "Queues to judge, and for O(state=running) to start, each with the number of C(RUNNING)
        processes it needs at least, for example V({\"default\": 5, \"prio\": 2})."
      - Keys are MISP's queue names V(default), V(email), V(cache), V(prio), V(update) and
        V(scheduler); values are at least 1 and at most the processes the group configures for
        the queue (C(numprocs)).
      - Processes belong to the queue named before the first C(_) of their name
        (C(default_00) serves V(default)), as MISP reads them.
      - When omitted, V(default), V(email), V(cache), V(prio) and V(update), each needing every
        process the group configures for it C(RUNNING), and at least one. So a configured worker
        that is not running makes its queue unhealthy, as MISP's worker page shows it dead. List
        a queue with a smaller count to accept fewer.
      - Queues of the group that are not listed are reported but not judged nor started.
    type: dict
  wait_timeout:
    description:
      - Seconds O(state=running) and O(state=restarted) wait for every listed queue to be
        healthy before failing with the queues that are short.
    type: int
    default: 60
  url:
    description:
      - Base URL of MISP, for example V(https://misp.example.org). When set, the module also
        reports what C(GET /servers/getWorkers) says in RV(misp_workers).
      - If not set, the value of the E(MISP_URL) environment variable is used.
    type: str
    required: false
  api_key:
    description:
      - Authentication key of a MISP site administrator, required with O(url).
      - If not set, the value of the E(MISP_API_KEY) environment variable is used.
      - Never logged nor returned.
    type: str
    required: false
extends_documentation_fragment:
  - cti.misp_platform.supervisor
  - cti.misp_platform.port_forward
  - cti.misp_platform.misp_api
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports what O(state=running) would start or O(state=restarted) would restart, and changes nothing.
  diff_mode:
    support: full
    details: Shows the state and pid of every process of the group before and after.
  platform:
    platforms: posix
notes:
  - O(port_forward) carries the connections to O(supervisor_url), for a controller outside the
    cluster network that the NetworkPolicies keep away from port 9001; O(url) is reached directly.
  - MISP judges a worker alive from C(/proc/<pid>) on the pod that answers the request, so with
    workers in their own pods MISP reports live workers as dead (MISP issue 8616). This module
    therefore judges health from supervisord alone; the MISP answer is only reported.
  - supervisord's own C(autorestart) brings back workers that exit unexpectedly, but not those
    stopped by hand nor those it marked C(FATAL) after C(startretries); O(state=running) starts those.
  - The XML-RPC API of supervisord is documented at U(https://supervisord.org/api.html).
seealso:
  - name: MISP background jobs migration guide
    description: How MISP configures supervisord for its workers.
    link: https://github.com/MISP/MISP/blob/2.5/docs/background-jobs-migration-guide.md
"""

EXAMPLES = r"""
- name: Report the workers
  cti.misp_platform.misp_worker_status:
    supervisor_url: http://misp-workers.misp.svc:9001
    supervisor_user: supervisor
    supervisor_password: "{{ misp_supervisor_password }}"
  register: workers

- name: Bring back dead workers, five default and two prio processes at least
  cti.misp_platform.misp_worker_status:
    supervisor_url: http://misp-workers.misp.svc:9001
    supervisor_user: supervisor
    supervisor_password: "{{ misp_supervisor_password }}"
    state: running
    queues:
      default: 5
      prio: 2
      email: 1
      cache: 1
      update: 1
    wait_timeout: 120

- name: Restart the workers after a MISP upgrade and compare with MISP's own view
  cti.misp_platform.misp_worker_status:
    supervisor_url: http://misp-workers.misp.svc:9001
    supervisor_user: supervisor
    supervisor_password: "{{ misp_supervisor_password }}"
    state: restarted
    url: https://misp.example.org
    api_key: "{{ misp_api_key }}"

- name: From a controller outside the cluster, through the API server (RBAC pods/portforward)
  cti.misp_platform.misp_worker_status:
    supervisor_url: http://misp-workers.misp.svc:9001
    supervisor_user: supervisor
    supervisor_password: "{{ misp_supervisor_password }}"
    port_forward:
      namespace: misp
      service: misp-workers
"""

RETURN = r"""
queues:
  description:
    - The processes of the group per queue, keyed by queue name (V(default), V(email)...).
      Queues of the group that O(queues) does not list are included with a RV(queues.wanted) of 0.
    - Each value holds the keys below. On failure after supervisord answered, the last state seen.
  returned: always
  type: dict
  sample:
    default:
      wanted: 1
      configured: 1
      running: 1
      healthy: true
      dead: []
      stopped: []
      processes:
        - name: default_00
          state: RUNNING
          pid: 4242
          uptime: 310
          description: pid 4242, uptime 0:05:10
  contains:
    wanted:
      description:
        - C(RUNNING) processes the queue needs at least; when O(queues) is omitted, every
          process the group configures for it (at least one).
      type: int
      returned: always
    configured:
      description: Processes the group configures for the queue (C(numprocs)).
      type: int
      returned: always
    running:
      description: C(RUNNING) processes the queue has.
      type: int
      returned: always
    healthy:
      description: Whether RV(queues.running) is at least RV(queues.wanted).
      type: bool
      returned: always
    dead:
      description:
        - Processes that ended, or fail to start, without being stopped (C(EXITED), C(FATAL),
          C(BACKOFF), C(UNKNOWN)); MISP's worker page shows them dead.
      type: list
      elements: str
      returned: always
      sample: [default_01]
    stopped:
      description: Processes stopped on purpose (C(STOPPED)); supervisord does not start them by itself.
      type: list
      elements: str
      returned: always
      sample: []
    processes:
      description: The queue's processes as supervisord reports them, sorted by name.
      type: list
      elements: dict
      returned: always
      contains:
        name:
          description: Process name in the group, C(<queue>_NN).
          type: str
          returned: always
          sample: default_00
        state:
          description: supervisord state, one of C(STOPPED), C(STARTING), C(RUNNING), C(BACKOFF),
            C(STOPPING), C(EXITED), C(FATAL), C(UNKNOWN).
          type: str
          returned: always
          sample: RUNNING
        pid:
          description: Process id, 0 when not running.
          type: int
          returned: always
          sample: 4242
        uptime:
          description: Seconds since the process started, 0 when not C(RUNNING).
          type: int
          returned: always
          sample: 310
        description:
          description: supervisord's one-line description (uptime, stop time or spawn error).
          type: str
          returned: always
          sample: "pid 4242, uptime 0:05:10"
healthy:
  description: Whether every listed queue has at least its wanted number of C(RUNNING) processes.
  returned: always
  type: bool
  sample: true
short:
  description: Listed queues short of C(RUNNING) processes.
  returned: always
  type: list
  elements: str
  sample: []
started:
  description:
    - Processes O(state=running) started (in check mode, would start), by name in the group.
  returned: always
  type: list
  elements: str
  sample: [default_00, email_00]
restarted:
  description:
    - Processes O(state=restarted) restarted (in check mode, would restart), that is the whole group.
  returned: always
  type: list
  elements: str
  sample: [cache_00, default_00, email_00, prio_00, update_00]
misp_workers:
  description:
    - MISP's own view from C(GET /servers/getWorkers), a second opinion that does not count
      towards RV(healthy) (MISP issue 8616, see the notes).
  returned: when O(url) is set
  type: dict
  contains:
    answer:
      description: MISP's answer as it came, or V(null) when MISP could not be asked.
      type: raw
      returned: always
      sample:
        default:
          ok: true
          jobCount: 0
          workers:
            - pid: 4242
              user: www-data
              alive: true
              correct_user: true
              ok: true
        proc_accessible: true
        supervisord_status: true
    error:
      description: Why MISP could not be asked, V(null) when it answered.
      type: str
      returned: always
      sample: null
    disagree:
      description: Listed queues MISP judges differently (its C(ok)) from RV(queues.healthy).
      type: list
      elements: str
      returned: always
      sample: [email]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cti.misp_platform.plugins.module_utils._misp_workers import argument_spec, run_module


def main():
    spec, checks = argument_spec()
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True, **checks)
    run_module(module)


if __name__ == "__main__":
    main()
