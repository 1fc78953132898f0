"""What MISP does to a value posted to ``/servers/serverSettingsEdit``: PHP casts, then the test.

Mirrors ``Server::serverSettingsEditValue``: ``trim()`` turns the JSON scalar into a string, then
booleans go through ``(bool)`` and numerics through ``(int)`` BEFORE the setting's test runs.
That is the REST casting pitfall: the string "false" saves as true, "abc" as 0.
"""

from __future__ import annotations

import re

from .catalogue import LANGUAGES

_PHP_WHITESPACE = " \t\n\r\0\x0b"
_PHP_INT_PREFIX = re.compile(r"\s*[+-]?\d+")
_PATH = re.compile(r"^/?([\w.:-]+/?)*$")


def php_string(value) -> str:
    """``trim($value)`` for a JSON scalar: true -> "1", false -> "", 2.0 -> "2"."""
    if value is True:
        text = "1"
    elif value is False:
        text = ""
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value)
    return text.strip(_PHP_WHITESPACE)


def php_bool(text: str) -> bool:
    return text not in ("", "0")


def php_int(text: str) -> int:
    match = _PHP_INT_PREFIX.match(text)
    return int(match.group(0)) if match else 0


def cast(definition: dict, value):
    """The value MISP stores for ``value`` posted as JSON."""
    text = php_string(value)
    if definition["type"] == "boolean":
        return php_bool(text)
    if definition["type"] == "numeric":
        return php_int(text)
    return text


# Each test returns True or MISP's error message, like the Server::test* methods.
def _test_bool(value):
    return True if isinstance(value, bool) else "Value is not a boolean."


def _test_bool_false(value):
    if value is not False:
        return (
            "It is highly recommended that this setting is disabled. "
            "Make sure you understand the impact of having this setting turned on."
        )
    return True


def _test_numeric(value):
    if isinstance(value, bool) or not isinstance(value, int):
        return "This setting has to be a number."
    return True


def _test_empty(value):
    return "Value not set." if php_string(value) == "" else True


def _test_base_url(value):
    if value == "":
        return True
    if not re.match(r"^https?://", value):
        return "Invalid baseurl, please make sure that the protocol is set."
    if value.endswith("/"):
        return "Remove the trailing slash from the baseurl."
    return True


def _test_language(value):
    return True if value in LANGUAGES else "Invalid language."


def _test_path(value):
    return True if _PATH.match(value) else "Invalid characters in the path."


def _test_salt(value):
    if value == "":
        return "Value not set."
    if '"' in value:
        return 'The salt cannot contain a " character.'
    if len(value) < 32:
        return "The salt has to be at least 32 characters long."
    return True


def _test_encryption_key(value):
    return True if len(value) >= 32 else "Encryption key must be at least 32 characters long."


def _test_password_length(value):
    if value < 0:
        return "Length cannot be negative, set a positive integer or 0 (to choose the default option)."
    return True


def _test_debug(value):
    return True if value in (0, 1, 2) else "This setting has to be a number between 0 and 2."


TESTS = {
    "testBool": _test_bool,
    "testLive": _test_bool,
    "testBoolFalse": _test_bool_false,
    "testForNumeric": _test_numeric,
    "testForEmpty": _test_empty,
    "testBaseURL": _test_base_url,
    "testLanguage": _test_language,
    "testForPath": _test_path,
    "testSalt": _test_salt,
    "testForEncryptionKey": _test_encryption_key,
    "testPasswordLength": _test_password_length,
    "testDebug": _test_debug,
}


def run_test(definition: dict, value):
    """True, or the reason MISP gives for refusing ``value`` (already cast)."""
    test = definition.get("test")
    return TESTS[test](value) if test else True
