"""Answers of MISP's API that both doubles must give exactly, as ../shared/reference/misp.md
documents them: the Python double (tests/doubles/misp_api, checked by
tests/unit/plugins/module_utils/test__misp_api.py) and the PHP one in the MISP stand-in image
(tests/doubles/misp_php, checked by tests/integration/test_misp_image.py).

Each case: method, path, JSON body (None: no body), HTTP status, the key of the answer that holds
the reason (``message`` for Cake's exceptions, ``errors`` for a refused edit) and the reason.
Run with a site admin's key, against a double whose settings are the catalogue's defaults.
MISP's worker actions (restartWorkers, startWorker...) are not here: the collection drives
supervisord itself, so only the Python double answers them (test__misp_api.py).
"""

from __future__ import annotations

NOT_ALLOWED = "Method Not Allowed"
INVALID_INPUT = 'Invalid input. Expected: {"value": "new_setting"}'

ERROR_ANSWERS = [
    ("GET", "/servers/getSetting/MISP.nothing", None, 404, "message", "Setting MISP.nothing is invalid."),
    ("GET", "/servers/getSetting/Security.salt", None, 403, "message", "This setting is redacted."),
    ("GET", "/servers/getSetting/Security.encryption_key", None, 403, "message", "This setting is redacted."),
    ("POST", "/servers/serverSettingsEdit/Security.encryption_key", {"value": "x" * 40}, 405, "message",
     "This setting can only be edited via the CLI."),
    ("POST", "/servers/serverSettingsEdit/MISP.system_setting_db", {"value": True}, 405, "message",
     "This setting can only be edited via the CLI."),
    ("POST", "/servers/serverSettingsEdit/MISP.language", {"nothing": 1}, 403, "errors", INVALID_INPUT),
    ("POST", "/servers/serverSettingsEdit/MISP.org", {"value": ["a"]}, 403, "errors", INVALID_INPUT),
    ("POST", "/servers/serverSettingsEdit/MISP.org", {"value": None}, 403, "errors", INVALID_INPUT),
    ("POST", "/servers/serverSettingsEdit/MISP.language", {"value": "klingon"}, 403, "errors", "Invalid language."),
    ("POST", "/servers/serverSettingsEdit/Security.salt", {"value": "*****"}, 403, "errors", "No change."),
    ("POST", "/servers/serverSettingsEdit/GnuPG.password", {"value": "*****"}, 403, "errors", "No change."),
    ("GET", "/servers/serverSettingsEdit/MISP.language", None, 405, "message", NOT_ALLOWED),
    ("POST", "/servers/getWorkers", None, 405, "message", NOT_ALLOWED),
    ("GET", "/servers/nothing", None, 404, "message", "Not Found"),
]  # fmt: skip
