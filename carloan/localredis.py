"""A private redis-server for benchmarks and tests (the demo's is scripts/demo.sh): loopback only,
a free port, its own temporary directory, no persistence. Stopped by its own pid."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    def __init__(self, prefix: str = "carloan-redis-") -> None:
        if not REDIS_SERVER:
            raise RuntimeError("redis-server is not installed (`make setup` installs it)")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def answers(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), 0.2) as s,
        ):
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
        return False

    def start(self, timeout: float = 20.0) -> float:
        """Start it and wait until it answers PING; the seconds that took. TimeoutError when it
        exits or stays silent."""
        started = time.monotonic()
        self.proc = subprocess.Popen(  # noqa: S603 - a fixed binary, our own arguments
            [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.dir]
            + ["--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while time.monotonic() - started < timeout:
            if self.answers():
                return time.monotonic() - started
            if self.proc.poll() is not None:
                raise TimeoutError(f"redis-server exited with status {self.proc.returncode}")
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"redis-server did not answer within {timeout:.0f} s")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (then SIGKILL) our own child; remove its directory. Its exit status."""
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            code = self.proc.returncode
        shutil.rmtree(self.dir, ignore_errors=True)
        return code
