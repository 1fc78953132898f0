# Copyright: cti.misp_platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading, comparing and writing MISP server settings (internal to this collection).

MISP's REST edit casts a posted value to the setting's type before validating it, so the string
"false" saves as true and "abc" as 0. Everything here therefore coerces each wanted value to the
JSON type the setting declares, and refuses what cannot be coerced, before anything is written.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.cti.misp_platform.plugins.module_utils._misp_api import MISP_API_ARGSPEC, MispApi, MispApiError
from ansible_collections.cti.misp_platform.plugins.module_utils._port_forward import (
    PORT_FORWARD_SPEC,
    PortForwardError,
    reach,
)

MISP_SETTINGS_ARGSPEC = {
    "settings": {"type": "dict", "default": {}},
    "secret_settings": {"type": "dict", "default": {}, "no_log": True},
    "force": {"type": "bool", "default": False},
    "redacted": {"type": "str", "choices": ["skip", "write"], "default": "skip"},
    "read_strategy": {"type": "str", "choices": ["auto", "each", "bulk"], "default": "auto"},
}


def argument_spec():
    """The module's options, and its checks as AnsibleModule takes them (none)."""
    return dict(MISP_API_ARGSPEC, port_forward=PORT_FORWARD_SPEC, **MISP_SETTINGS_ARGSPEC), {}


# MISP shows the value of a redacted setting as this, everywhere.
MASK = "*****"
# read_strategy=auto reads settings one by one up to this many, and in bulk above it: the bulk
# read also runs MISP's diagnostics, which costs about as much as this many single reads.
BULK_THRESHOLD = 10
_REDACTED_MESSAGE = "This setting is redacted."
_INTEGER = re.compile(r"^[+-]?\d+$")

# Settings MISP marks cli_only (MISP/MISP app/Model/Server.php, generateServerSettings(), branch
# 2.5 at commit 68d1e16f): POST /servers/serverSettingsEdit answers them HTTP 405. Known here so
# that a run refuses them before its first write, also where MISP shows no definition (the
# redacted Security.encryption_key) or a release lacks the flag.
CLI_ONLY_SETTINGS = frozenset(
    (
        "GnuPG.binary",
        "MISP.attachments_dir",
        "MISP.ca_path",
        "MISP.python_bin",
        "MISP.system_setting_db",
        "MISP.tmpdir",
        "Security.disable_local_feed_access",
        "Security.encryption_key",
        "Security.rest_client_enable_arbitrary_urls",
    )
)
# Names of settings that hold secrets. MISP redacts most (passwords, Security.salt, keys) but not
# every one in every release (Plugin.ZeroMQ_password, Plugin.S3_aws_secret_key are shown), and it
# says which only once the settings are read: their values are hidden from the start by name.
_SECRET_NAME = re.compile(r"(password|passphrase|passwd|secret|salt|token|key)$", re.IGNORECASE)


class MispSettingsError(Exception):
    """The run stopped; ``result`` holds what the module reports with the failure."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.message = message
        self.result = result or {}


def is_secret_name(name):
    """Whether setting ``name`` holds a secret by its name (``..._password``, ``Security.salt``, ``..._key``)."""
    return bool(_SECRET_NAME.search(str(name)))


def _texts(value):
    """The text forms under which ``value`` could be shown: Ansible masks numbers by their text too."""
    if isinstance(value, dict):
        return {text for item in value.values() for text in _texts(item)}
    if isinstance(value, list):
        return {text for item in value for text in _texts(item)}
    if value is None or isinstance(value, bool):
        return set()
    text = str(value)
    return {form for form in (text, text.strip()) if form}


def secret_values(params):
    """Texts of every value of ``secret_settings`` and of ``settings`` named like a secret.

    For AnsibleModule.no_log_values before anything is read or can fail, so that neither a
    message nor the invocation -vvv shows them, whatever their type.
    """
    values = set()
    for value in (params.get("secret_settings") or {}).values():
        values |= _texts(value)
    for name, value in (params.get("settings") or {}).items():
        if is_secret_name(name):
            values |= _texts(value)
    return values


def _describe(value):
    if isinstance(value, bool):
        return "boolean " + str(value).lower()
    if isinstance(value, (dict, list)):
        return "a " + type(value).__name__
    return repr(value)


def coerce(definition, value):
    """``value`` as the JSON scalar the setting declares; ValueError (the reason) if it cannot be."""
    if value is None:
        raise ValueError("needs a value, got null (MISP refuses null)")
    if isinstance(value, (dict, list)):
        raise ValueError(f"takes a single value, got {_describe(value)}")
    kind = definition.get("type")
    if kind == "boolean":
        try:
            result = boolean(value.strip() if isinstance(value, str) else value, strict=True)
        except TypeError:
            raise ValueError(f"expects a boolean (true/false), got {_describe(value)}") from None
    elif kind == "numeric":
        result = _to_int(value)
        if result is None:
            raise ValueError(f"expects a whole number, got {_describe(value)}")
    else:
        if isinstance(value, bool):
            raise ValueError(f"expects a string, got {_describe(value)}; quote it if you mean the text")
        # MISP trims what it stores; trimming here keeps the comparison stable.
        result = str(value).strip()
    if result == MASK:
        raise ValueError(f"'{MASK}' is MISP's mask for hidden values, not a value")
    options = definition.get("options")
    if isinstance(options, dict) and options and _option_key(result) not in options:
        allowed = ", ".join(f"{key} ({label})" if str(label) != key else key for key, label in options.items())
        raise ValueError(f"must be one of {allowed}; got {_describe(value)}")
    return result


def _to_int(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        return int(value.strip())
    return None


def _option_key(value):
    # Options come from a PHP array: their keys arrive as strings in JSON.
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def normalise(definition, value):
    """A current value from MISP in the declared type, or None when it holds none of that type."""
    kind = definition.get("type")
    if value is None:
        return None
    if kind == "boolean":
        if isinstance(value, str) and value.strip() == "":
            # PHP's false as stored in config.php.
            return False
        try:
            return boolean(value, strict=True)
        except TypeError:
            return None
    if kind == "numeric":
        # MISP ships `false` as the default of some numeric settings: that is "unset", not 0.
        return _to_int(value)
    if isinstance(value, bool):
        return None
    return str(value)


def read_each(api, names):
    """One ``getSetting`` per name: {name: definition with value}, None for unknown names."""
    found = {}
    for name in names:
        try:
            found[name] = api.get("/servers/getSetting/" + quote(name, safe=""))
        except MispApiError as exc:
            message = exc.body.get("message") if isinstance(exc.body, dict) else None
            if exc.status == 404:
                found[name] = None
            elif exc.status == 403 and message == _REDACTED_MESSAGE:
                found[name] = {"name": name, "redacted": True, "value": MASK}
            else:
                raise
    return found


def read_bulk(api, names):
    """One ``serverSettings`` read: same answer as read_each."""
    document = api.get("/servers/serverSettings")
    final = document.get("finalSettings") if isinstance(document, dict) else None
    if not isinstance(final, list):
        raise MispApiError("GET /servers/serverSettings answered without a finalSettings list", body=document)
    by_name = {entry.get("setting"): entry for entry in final if isinstance(entry, dict)}
    return {name: by_name.get(name) for name in names}


class SettingsRun:
    """One run of misp_settings: read, check everything, then write what differs."""

    def __init__(self, api, params, check_mode=False, hide=None, warn=None):
        self.api = api
        self.force = params["force"]
        self.redacted_policy = params["redacted"]
        self.check_mode = check_mode
        # Called with each value that must never be shown (AnsibleModule.no_log_values.add).
        self.hide = hide or (lambda value: None)
        # Called with each warning for the user (AnsibleModule.warn).
        self.warn = warn or (lambda message: None)
        self.wanted, self.secret = self._merge(params.get("settings") or {}, params.get("secret_settings") or {})
        self.secret.update(name for name in self.wanted if is_secret_name(name))
        strategy = params["read_strategy"]
        if strategy == "auto":
            strategy = "bulk" if len(self.wanted) > BULK_THRESHOLD else "each"
        self.strategy = strategy
        self.requests = {"get": 0, "post": 0}

    @staticmethod
    def _merge(settings, secret_settings):
        both = sorted(set(map(str, settings)) & set(map(str, secret_settings)))
        if both:
            raise MispSettingsError(
                "Settings given in both settings and secret_settings, nothing was written: " + ", ".join(both)
            )
        wanted = {str(name): value for name, value in settings.items()}
        wanted.update((str(name), value) for name, value in secret_settings.items())
        return wanted, {str(name) for name in secret_settings}

    def run(self):
        result = self._result()
        if not self.wanted:
            return result
        names = list(self.wanted)
        if self.strategy == "bulk":
            self.requests["get"] += 1
            definitions = read_bulk(self.api, names)
        else:
            self.requests["get"] += len(names)
            definitions = read_each(self.api, names)
        changes, redacted_writes, skipped = self._plan(definitions, result)
        self._warn_skipped(skipped)
        for name, _before, after in changes + redacted_writes:
            if not self.check_mode:
                self._write(name, after, result)
            written = result["redacted_written"] if name in result["redacted_settings"] else result["changed_settings"]
            written.append(name)
        result["changed"] = bool(result["changed_settings"])
        result["diff"] = {
            "before": {name: self._shown(name, before) for name, before, _after in changes + redacted_writes},
            "after": {name: self._shown(name, after) for name, _before, after in changes + redacted_writes},
        }
        return result

    def _result(self):
        return {
            "changed": False,
            "changed_settings": [],
            "unchanged_settings": [],
            "redacted_settings": [],
            "redacted_written": [],
            "read_strategy": self.strategy,
            "requests": self.requests,
        }

    def _shown(self, name, value):
        return MASK if name in self.secret else value

    def _plan(self, definitions, result):
        """(changes, redacted writes, skipped redacted settings); MispSettingsError naming every bad entry.

        Changes and writes are (name, before, after). Nothing is written before this returns, so
        every setting MISP would refuse for a reason known beforehand is refused here.
        """
        invalid, changes, redacted_writes, skipped = {}, [], [], []
        for name, value in self.wanted.items():
            definition = definitions.get(name)
            if definition is None:
                invalid[name] = "unknown setting"
                continue
            redacted = bool(definition.get("redacted")) or definition.get("value") == MASK
            if redacted:
                self.secret.add(name)
            if name in self.secret:
                for text in _texts(value):
                    self.hide(text)
            try:
                after = coerce(definition, value) if not redacted else self._coerce_secret(value)
            except ValueError as exc:
                message = str(exc)
                if name in self.secret:
                    message = message.replace(_describe(value), "the secret value")
                invalid[name] = message
                continue
            cli_only = name in CLI_ONLY_SETTINGS or bool(definition.get("cli_only"))
            if redacted:
                result["redacted_settings"].append(name)
                if self.redacted_policy == "skip":
                    skipped.append((name, cli_only))
                elif cli_only:
                    invalid[name] = f"{_cli_only(name)}, not through the API"
                else:
                    redacted_writes.append((name, MASK, after))
                continue
            before = definition.get("value")
            if normalise(definition, before) == after:
                result["unchanged_settings"].append(name)
            elif cli_only:
                shown = _describe(self._shown(name, before))
                invalid[name] = f"{_cli_only(name)}, not through the API; MISP has {shown}"
            else:
                changes.append((name, before, after))
        if invalid:
            result["invalid_settings"] = invalid
            raise MispSettingsError(
                "Invalid MISP settings, nothing was written: "
                + "; ".join(f"{name}: {reason}" for name, reason in invalid.items()),
                result,
            )
        return changes, redacted_writes, skipped

    def _warn_skipped(self, skipped):
        """Warn of the redacted settings asked for and left unwritten by redacted=skip, ``(name, cli_only)``."""
        cli = [name for name, cli_only in skipped if cli_only]
        writable = [name for name, cli_only in skipped if not cli_only]
        if writable:
            self.warn(
                "Not written, because MISP hides the current value of these redacted settings and redacted is "
                f"skip: {', '.join(writable)}. Set redacted: write to write them (on every run)."
            )
        for name in cli:
            self.warn(f"Not written: {name} is redacted, and {_cli_only(name)}, not through the API.")

    @staticmethod
    def _coerce_secret(value):
        # MISP reveals no definition for a redacted setting; they are all strings.
        if isinstance(value, (bool, dict, list)) or value is None:
            raise ValueError("expects a string (MISP hides this setting's type and value)")
        return coerce({"type": "string"}, value)

    def _write(self, name, value, result):
        self.requests["post"] += 1
        try:
            answer = self.api.post(
                "/servers/serverSettingsEdit/" + quote(name, safe=""), {"value": value, "force": self.force}
            )
        except MispApiError as exc:
            raise MispSettingsError(
                _with_written(self._refusal(name, value, exc), result), self._partial(result, name)
            ) from None
        if not (isinstance(answer, dict) and answer.get("saved")):
            raise MispSettingsError(
                _with_written(f"MISP did not save {name}: unexpected answer {answer!r}", result),
                self._partial(result, name),
            )

    def _refusal(self, name, value, exc):
        if exc.status == 405:
            return f"{name} {_cli_only(name)}: {exc.message}"
        if exc.status == 403 and isinstance(exc.body, dict) and "errors" in exc.body:
            return f"MISP refused {name} = {_describe(self._shown(name, value))}: {exc.body['errors']}"
        return f"Writing {name} failed: {exc.message}"

    @staticmethod
    def _partial(result, failed):
        written = list(result["changed_settings"])
        return {
            "changed": bool(written),
            "changed_settings": written,
            "redacted_written": list(result["redacted_written"]),
            "failed_setting": failed,
        }


def _cli_only(name):
    return f"can only be changed on the MISP command line (cake Admin setSetting {name} ...)"


def _with_written(message, result):
    """``message`` of a write MISP refused, saying what this run had already written."""
    written = result["changed_settings"] + result["redacted_written"]
    ending = f"Already written: {', '.join(written)}." if written else "Nothing was written."
    return f"{message}{'' if message.endswith('.') else '.'} {ending}"


def run_module(module):
    """Entry point of the misp_settings module: read, compare, write; errors become fail_json."""
    # Before anything can fail (a bad url, a wrong key), so that no output shows them.
    module.no_log_values.update(secret_values(module.params))
    try:
        # Built first so that a bad url or timeout fails before any port-forward is opened.
        MispApi(module.params)
        with reach(module.params, "url") as route:
            try:
                api = MispApi(dict(module.params, url=route.url(module.params["url"])))
                run = SettingsRun(api, module.params, module.check_mode, module.no_log_values.add, module.warn)
                result = run.run()
            except MispSettingsError as exc:
                module.fail_json(msg=route.explain(exc.message), **exc.result)
            except MispApiError as exc:
                module.fail_json(msg=route.explain(exc.message))
    except (MispApiError, PortForwardError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)
