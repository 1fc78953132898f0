# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Longhorn Volume logic for the longhorn_volume module (internal to this collection).

Pure parts (size parsing, validation, spec building, comparison, wait predicate) need nothing
but the standard library, so they are unit-tested without a cluster. The API part reuses
kubernetes.core's client, service and waiter, as kubernetes.core.k8s does.
"""

from __future__ import annotations

import json
import os
import re
from decimal import Decimal, InvalidOperation

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import (
    CoreException,
    ResourceTimeout,
)
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.service import (
    K8sService,
    diff_objects,
)
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.waiter import (
    Waiter,
    resource_absent,
)

try:
    from kubernetes.client.exceptions import ApiException
    from kubernetes.dynamic.exceptions import DynamicApiError
    from urllib3.exceptions import HTTPError
except ImportError:
    # AnsibleK8SModule reports the missing library before any of these is needed.
    ApiException = DynamicApiError = HTTPError = None

VOLUME_API_VERSION = "longhorn.io/v1beta2"
VOLUME_KIND = "Volume"
CSI_DRIVER = "driver.longhorn.io"

# Enumerations of the Volume CR (docs/reference platform.md).
DATA_LOCALITIES = ("disabled", "best-effort", "strict-local")
ACCESS_MODES = ("rwo", "rwop", "rwx")
FRONTENDS = ("blockdev", "iscsi", "nvmf", "")
DATA_ENGINES = ("v1", "v2")
VOLUME_STATES = ("creating", "attached", "detached", "attaching", "detaching", "deleting")
ROBUSTNESS = ("healthy", "degraded", "faulted", "unknown")

# Longhorn's webhook rounds every size up to this alignment; doing the same here keeps the
# second run idempotent instead of fighting the webhook.
SIZE_ALIGNMENT = 2 * 1024 * 1024
# Longhorn's own bound for numberOfReplicas (types.ValidateReplicaCount).
MAX_REPLICAS = 20
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGTPE]i|[kMGTPE])?\s*$")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"k": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}

# Module option -> Volume spec field, for the options that map one to one.
SPEC_FIELDS = {
    "number_of_replicas": "numberOfReplicas",
    "data_locality": "dataLocality",
    "access_mode": "accessMode",
    "frontend": "frontend",
    "encrypted": "encrypted",
    "data_engine": "dataEngine",
    "node_selector": "nodeSelector",
    "disk_selector": "diskSelector",
    "stale_replica_timeout": "staleReplicaTimeout",
    "migratable": "migratable",
}
# Fields Longhorn cannot change on an existing volume, with the value Longhorn assumes when the
# field is unset: the data engine (the webhook refuses the change) and encryption (the LUKS
# format happens once, at creation).
IMMUTABLE_FIELDS = {"dataEngine": "v1", "encrypted": False}
_OPTIONS = {field: option for option, field in SPEC_FIELDS.items()}
# Longhorn accessMode -> Kubernetes PersistentVolume access mode.
PV_ACCESS_MODES = {"rwo": "ReadWriteOnce", "rwop": "ReadWriteOncePod", "rwx": "ReadWriteMany"}

VOLUME_ARG_SPEC = {
    "name": {"type": "str", "required": True},
    "namespace": {"type": "str", "default": "longhorn-system"},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
    "size": {"type": "raw"},
    "number_of_replicas": {"type": "int"},
    "data_locality": {"type": "str", "choices": list(DATA_LOCALITIES)},
    "access_mode": {"type": "str", "choices": list(ACCESS_MODES)},
    "frontend": {"type": "str", "choices": list(FRONTENDS)},
    "encrypted": {"type": "bool"},
    "data_engine": {"type": "str", "choices": list(DATA_ENGINES)},
    "node_selector": {"type": "list", "elements": "str"},
    "disk_selector": {"type": "list", "elements": "str"},
    "stale_replica_timeout": {"type": "int"},
    "migratable": {"type": "bool"},
    "pv": {
        "type": "dict",
        "options": {
            "name": {"type": "str"},
            "fs_type": {"type": "str", "default": "ext4"},
            "storage_class_name": {"type": "str", "default": "longhorn-static"},
        },
    },
    "pvc": {
        "type": "dict",
        "options": {
            "name": {"type": "str"},
            "namespace": {"type": "str", "required": True},
        },
    },
    "wait": {"type": "bool", "default": False},
    "wait_for_state": {"type": "str", "choices": list(VOLUME_STATES)},
    "wait_for_robustness": {"type": "str", "choices": list(ROBUSTNESS)},
    "wait_timeout": {"type": "int", "default": 120},
    "wait_sleep": {"type": "int", "default": 2},
}


class LonghornError(CoreException):
    """Bad input or a refused change; raised before anything is sent to the cluster."""


def parse_size(value):
    """Bytes (int) of a size given as bytes or a Kubernetes quantity ("10Gi", "512Mi", "1.5G").

    Rounded up to Longhorn's 2 MiB alignment.
    """
    if isinstance(value, bool) or value is None:
        raise LonghornError(f"size: expected bytes or a quantity such as 10Gi, got {value!r}")
    if isinstance(value, int):
        number, unit = Decimal(value), None
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise LonghornError(
                f"size: cannot parse {value!r}; use bytes or a quantity with a unit "
                f"among {', '.join([*_BINARY, *_DECIMAL])} (for example 10Gi)"
            )
        try:
            number, unit = Decimal(match.group(1)), match.group(2)
        except InvalidOperation as e:
            raise LonghornError(f"size: cannot parse {value!r}") from e
    if unit in _BINARY:
        number *= 1024 ** _BINARY[unit]
    elif unit in _DECIMAL:
        number *= 1000 ** _DECIMAL[unit]
    if number <= 0:
        raise LonghornError(f"size: must be greater than zero, got {value!r}")
    if number != number.to_integral_value():
        raise LonghornError(f"size: {value!r} is not a whole number of bytes")
    size = int(number)
    return -(-size // SIZE_ALIGNMENT) * SIZE_ALIGNMENT


def _check_name(option, value):
    if not _K8S_NAME.match(value) or len(value) > 63:
        raise LonghornError(
            f"{option}: {value!r} is not a valid name (lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )


def validate(params):
    """Check what the argument spec cannot express; raises LonghornError naming the option."""
    _check_name("name", params["name"])
    _check_name("namespace", params["namespace"])
    for key in ("pv", "pvc"):
        for option in ("name", "namespace"):
            if (params.get(key) or {}).get(option):
                _check_name(f"{key}.{option}", params[key][option])
    # Checked for both states: state=absent waits for the deletion with them.
    for option in ("wait_timeout", "wait_sleep"):
        if params[option] < 1:
            raise LonghornError(f"{option}: must be at least 1 second, got {params[option]}")
    if params["state"] == "absent":
        return
    if params.get("size") is None:
        raise LonghornError("size: required when state is present")
    parse_size(params["size"])
    replicas = params.get("number_of_replicas")
    if replicas is not None and not 1 <= replicas <= MAX_REPLICAS:
        raise LonghornError(f"number_of_replicas: must be between 1 and {MAX_REPLICAS}, got {replicas}")
    if params.get("data_locality") == "strict-local" and replicas not in (None, 1):
        raise LonghornError(f"number_of_replicas: must be 1 when data_locality is strict-local, got {replicas}")
    timeout = params.get("stale_replica_timeout")
    if timeout is not None and timeout < 1:
        raise LonghornError(f"stale_replica_timeout: must be a positive number of minutes, got {timeout}")
    if params.get("migratable") and params.get("access_mode") != "rwx":
        raise LonghornError(
            f"migratable: Longhorn migrates only rwx volumes, but access_mode is {params.get('access_mode')!r}"
        )
    if params.get("encrypted") and params.get("data_engine") == "v2":
        raise LonghornError("encrypted: Longhorn does not encrypt volumes of data_engine v2")
    if (params.get("pv") or params.get("pvc")) and params.get("frontend") == "":
        raise LonghornError("frontend: a volume without frontend cannot back a PersistentVolume")
    if params["wait"] and not (params.get("wait_for_state") or params.get("wait_for_robustness")):
        raise LonghornError("wait: set wait_for_state and/or wait_for_robustness to say what to wait for")


def build_volume(params):
    """The Volume definition the options describe; unset options are left to Longhorn's defaults."""
    spec = {"size": str(parse_size(params["size"]))}
    for option, field in SPEC_FIELDS.items():
        if params.get(option) is not None:
            spec[field] = params[option]
    return {
        "apiVersion": VOLUME_API_VERSION,
        "kind": VOLUME_KIND,
        "metadata": {"name": params["name"], "namespace": params["namespace"]},
        "spec": spec,
    }


def spec_changes(existing_spec, desired_spec):
    """The fields of desired_spec to patch into existing_spec (empty when nothing changes).

    Growing is a change; shrinking and changing an immutable field raise LonghornError naming it.
    """
    changes = {}
    for field, wanted in desired_spec.items():
        current = existing_spec.get(field)
        if field == "size":
            current_size = int(current or 0)
            if int(wanted) < current_size:
                raise LonghornError(
                    f"size (spec.size): Longhorn volumes only grow; cannot shrink from {current_size} to {wanted} bytes"
                )
        elif field in IMMUTABLE_FIELDS:
            effective = IMMUTABLE_FIELDS[field] if current is None else current
            if wanted != effective:
                raise LonghornError(
                    f"{_OPTIONS[field]} (spec.{field}): cannot change from {effective!r} to {wanted!r} "
                    "on an existing volume; Longhorn sets it at creation only"
                )
            continue
        elif isinstance(wanted, list):
            if sorted(wanted) == sorted(current or []):
                continue
        if current != wanted:
            changes[field] = wanted
    return changes


def volume_ready(state=None, robustness=None):
    """Waiter predicate: the Volume exists and shows the wanted status.state and status.robustness."""

    def predicate(instance):
        if not instance:
            return False
        status = instance.to_dict().get("status") or {}
        return (state is None or status.get("state") == state) and (
            robustness is None or status.get("robustness") == robustness
        )

    return predicate


def persistent_volume(params, volume):
    """The PersistentVolume for an existing Longhorn volume, as Longhorn's UI creates it."""
    pv = params["pv"]
    spec = volume["spec"]
    access_mode = PV_ACCESS_MODES[spec.get("accessMode") or "rwo"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv.get("name") or params["name"]},
        "spec": {
            "capacity": {"storage": spec["size"]},
            "volumeMode": "Filesystem",
            "accessModes": [access_mode],
            # Retain: deleting the PV must never delete the Longhorn volume it points to.
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": pv["storage_class_name"],
            "csi": {"driver": CSI_DRIVER, "fsType": pv["fs_type"], "volumeHandle": params["name"]},
        },
    }


def persistent_volume_claim(params, pv):
    """A PersistentVolumeClaim bound to ``pv`` through volumeName."""
    pvc = params["pvc"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": pvc.get("name") or params["name"], "namespace": pvc["namespace"]},
        "spec": {
            "accessModes": pv["spec"]["accessModes"],
            "resources": {"requests": {"storage": pv["spec"]["capacity"]["storage"]}},
            "storageClassName": pv["spec"]["storageClassName"],
            "volumeMode": "Filesystem",
            "volumeName": pv["metadata"]["name"],
        },
    }


def _check_kubeconfig(params):
    """Name a missing kubeconfig file: the client library only says it found no configuration."""
    kubeconfig = params.get("kubeconfig") or os.environ.get("K8S_AUTH_KUBECONFIG")
    if not isinstance(kubeconfig, str):
        return
    for path in kubeconfig.split(os.pathsep):
        if path and not os.path.isfile(os.path.expanduser(path)):
            raise LonghornError(f"kubeconfig: file {path!r} does not exist")


def _is_api_error(error):
    return HTTPError is not None and isinstance(error, (HTTPError, DynamicApiError, ApiException))


def _explain(error, host):
    """A one-line reason for a failed API call, naming the API server and its own message."""
    if isinstance(error, HTTPError):
        return f"cannot reach the Kubernetes API at {host}: {error}"
    try:
        message = json.loads(error.body)["message"]
    except (TypeError, ValueError, KeyError):
        message = error.reason
    return f"Kubernetes API at {host} answered {error.status} {error.reason}: {message}"


class VolumeRunner:
    """Brings one Volume (and optionally its PV and PVC) to the state the options describe."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.check_mode = module.check_mode
        self.client = self.svc = None

    def run(self):
        _check_kubeconfig(self.params)
        try:
            # Building the client already talks to the API server (version discovery).
            self.client = get_api_client(self.module)
            self.svc = K8sService(self.client, self.module)
            return self._run()
        except ResourceTimeout:
            raise
        except CoreException as e:
            # kubernetes.core's service quotes the raw response body; say what the server said.
            if not _is_api_error(e.__cause__):
                raise
            action = str(e).split(":", 1)[0]
            raise CoreException(f"{action}: {_explain(e.__cause__, self._host())}") from e.__cause__
        except Exception as e:
            if not _is_api_error(e):
                raise
            raise CoreException(_explain(e, self._host())) from e

    def _host(self):
        if self.client is not None:
            return self.client.configuration.host
        return self.params.get("host") or os.environ.get("K8S_AUTH_HOST") or "the configured cluster"

    def _resource(self, kind, api_version):
        resource = self.svc.find_resource(kind, api_version)
        if resource is None:
            raise LonghornError(f"the cluster at {self._host()} serves no {api_version} {kind}; is Longhorn installed?")
        return resource

    def _run(self):
        volumes = self._resource(VOLUME_KIND, VOLUME_API_VERSION)
        ref = {"metadata": {"name": self.params["name"], "namespace": self.params["namespace"]}}
        existing = self.svc.retrieve(volumes, ref)
        before = existing.to_dict() if existing else {}
        if self.params["state"] == "absent":
            return self._absent(volumes, ref, before)
        return self._present(volumes, before)

    def _present(self, volumes, before):
        desired = build_volume(self.params)
        result = {"changed": False}
        if not before:
            # A check-mode create is a server-side dry run: the API validates the object and
            # stores nothing.
            instance, warnings = self.svc.create(volumes, desired)
            result.update(changed=True, method="create")
        else:
            changes = spec_changes(before.get("spec") or {}, desired["spec"])
            if changes:
                self._grow_claim(desired, changes)
                instance, warnings = self.svc.patch_resource(
                    volumes, {"spec": changes}, self.params["name"], self.params["namespace"], merge_type="merge"
                )
                result.update(changed=True, method="update")
            else:
                instance, warnings = before, []
        if warnings:
            result["warnings"] = warnings
        if self.params.get("pv"):
            self._ensure_claim(instance or desired, result)
        if self.params["wait"] and not self.check_mode:
            instance = self._wait(volumes, result, instance)
        result["result"] = instance
        self._diff(result, before, instance)
        return result

    def _ensure_claim(self, volume, result):
        pv = persistent_volume(self.params, volume)
        result["pv"] = self._ensure("PersistentVolume", pv, result)
        if self.params.get("pvc"):
            pvc = persistent_volume_claim(self.params, pv)
            result["pvc"] = self._ensure("PersistentVolumeClaim", pvc, result)

    def _ensure(self, kind, definition, result):
        """Create ``definition`` if missing; an existing one must point at this volume."""
        resource = self._resource(kind, "v1")
        existing = self.svc.retrieve(resource, definition)
        if not existing:
            instance, warnings = self.svc.create(resource, definition)
            result["changed"] = True
            result.setdefault("warnings", []).extend(warnings)
            return instance
        found = existing.to_dict()
        if kind == "PersistentVolume":
            csi = found["spec"].get("csi") or {}
            option, bound_to = "pv.name", f"{csi.get('driver')}/{csi.get('volumeHandle')}"
            wanted = f"{CSI_DRIVER}/{self.params['name']}"
        else:
            option, bound_to, wanted = "pvc.name", found["spec"].get("volumeName"), definition["spec"]["volumeName"]
        if bound_to != wanted:
            raise LonghornError(
                f"{option}: {kind} {definition['metadata']['name']!r} exists and points at {bound_to!r}, not {wanted!r}"
            )
        return found

    def _grow_claim(self, desired, changes):
        """Longhorn expands a volume bound to a PVC only after the PVC asks for the new size."""
        if "size" not in changes or not self.params.get("pvc"):
            return
        pvcs = self._resource("PersistentVolumeClaim", "v1")
        claim = persistent_volume_claim(self.params, persistent_volume(self.params, desired))
        if self.svc.retrieve(pvcs, claim):
            self.svc.patch_resource(
                pvcs,
                {"spec": {"resources": claim["spec"]["resources"]}},
                claim["metadata"]["name"],
                claim["metadata"]["namespace"],
                merge_type="merge",
            )

    def _wait(self, volumes, result, instance):
        state, robustness = self.params.get("wait_for_state"), self.params.get("wait_for_robustness")
        success, instance = self._poll(volumes, volume_ready(state, robustness), result)
        if not success:
            status = (instance or {}).get("status") or {}
            wanted = ", ".join(f"{k}={v}" for k, v in (("state", state), ("robustness", robustness)) if v)
            result["result"] = instance
            raise ResourceTimeout(
                f'Volume "{self.params["name"]}": timed out after {self.params["wait_timeout"]}s waiting for '
                f"{wanted}; last seen state={status.get('state')!r}, robustness={status.get('robustness')!r}",
                result,
            )
        return instance

    def _poll(self, volumes, predicate, result):
        """Read the volume until ``predicate`` holds or wait_timeout passes; (success, last object)."""
        success, instance, result["duration"] = Waiter(self.client, volumes, predicate).wait(
            timeout=self.params["wait_timeout"],
            sleep=self.params["wait_sleep"],
            name=self.params["name"],
            namespace=self.params["namespace"],
        )
        return success, instance

    def _absent(self, volumes, ref, before):
        result = {"changed": False, "method": "delete", "result": {}}
        claims = []
        if self.params.get("pvc"):
            claims.append(("PersistentVolumeClaim", self.params["pvc"]["name"], self.params["pvc"]["namespace"]))
        if self.params.get("pv"):
            claims.append(("PersistentVolume", self.params["pv"]["name"], None))
        # Claims first: a PV or volume still in use by a claim would be left dangling.
        for kind, name, namespace in claims:
            resource = self._resource(kind, "v1")
            definition = {"metadata": {"name": name or self.params["name"], "namespace": namespace}}
            existing = self.svc.retrieve(resource, definition)
            if existing:
                self.svc.delete(resource, definition, existing)
                result["changed"] = True
        if before:
            self.svc.delete(volumes, ref, before)
            result["changed"] = True
            waiting = self.params["wait"] and not self.check_mode
            if waiting and not self._poll(volumes, resource_absent, result)[0]:
                raise ResourceTimeout(
                    f'Volume "{self.params["name"]}": still present {self.params["wait_timeout"]}s after deletion',
                    result,
                )
        self._diff(result, before, {})
        return result

    def _diff(self, result, before, after):
        if self.module._diff:
            if before and after:
                result["diff"] = diff_objects(before, after)[1]
            else:
                result["diff"] = {"before": before, "after": after}


def run_module(module):
    """Entry point of the module: validate, act, exit_json; errors become fail_json."""
    try:
        validate(module.params)
        module.exit_json(**VolumeRunner(module).run())
    except ResourceTimeout as e:
        module.fail_json(msg=str(e), **e.result)
    except CoreException as e:
        module.fail_from_exception(e)
