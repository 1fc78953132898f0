"""Launchers for the real peers the tests talk to (OpenBao, Keycloak, MariaDB, Redis, supervisord).

Each launcher runs the real program on a loopback port with generated credentials and is usable
three ways: as a context manager from pytest fixtures, and from the shell (molecule prepare and
cleanup steps, or by hand) as ``python -m tests.rig.peers.<name> start|stop|env --state-dir DIR``.
"""
