"""gunicorn servers and ``wrk`` runs on loopback, for the WSGI benchmarks.

Each server serves one variant of ``variants.py`` (through ``wsgi.py``) on 127.0.0.1 and a
free port; ``wrk`` runs for a bounded duration. The CPU time the server's processes used
during a run is read from ``/proc``, which is far less disturbed by other load on the
machine than requests per second.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

_POST_SCRIPT = 'wrk.method = "POST"\n'


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as file:
            return [int(part) for part in file.read().split()]
    except OSError:
        return []


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as file:
            fields = file.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


@dataclass
class Server:
    """A running gunicorn master and the URL it serves."""

    process: subprocess.Popen[bytes]
    url: str
    log: str

    def workers(self) -> list[int]:
        """Process ids of the worker processes."""
        return _children(self.process.pid)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used by the workers so far."""
        return sum(_cpu_seconds(pid) for pid in self.workers())

    def stop(self) -> None:
        """Stop gunicorn (graceful, then forced) and remove its log."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if os.path.exists(self.log):
            os.unlink(self.log)


def start_gunicorn(
    env: dict[str, str],
    *,
    worker_class: str = "sync",
    workers: int = 1,
    threads: int = 1,
    app: str = "wsgi:app",
    ready_path: str = "/none",
    timeout: float = 60.0,
) -> Server:
    """Start gunicorn for ``app`` (a module in ``benchmarks/``) on a free loopback port
    and wait until it answers ``ready_path``."""
    port = free_port()
    fd, log = tempfile.mkstemp(prefix="edb-gunicorn-", suffix=".log")
    os.close(fd)
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--pythonpath",
        HERE,
        "--bind",
        f"127.0.0.1:{port}",
        "--worker-class",
        worker_class,
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--log-level",
        "warning",
        "--error-logfile",
        log,
        app,
    ]
    with open(log, "ab") as output:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            with open(log, encoding="utf-8", errors="replace") as file:
                tail = file.read()[-2000:]
            server.stop()
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(server.url + ready_path, timeout=2) as response:
                if response.status == 200 and len(server.workers()) >= workers:
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"gunicorn did not answer on {server.url} within {timeout} s")
        time.sleep(0.2)


@dataclass
class WrkResult:
    """What one ``wrk`` run measured."""

    requests: int
    seconds: float
    errors: int

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds


def wrk_path() -> str:
    """Path of the ``wrk`` executable, or a clear error."""
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed; install it with 'apt-get install -y wrk'.")
    return path


def run_wrk(
    url: str, *, connections: int = 1, threads: int = 1, duration: float = 1.0, post: bool = False
) -> WrkResult:
    """Drive ``url`` with ``wrk`` for ``duration`` seconds; raise if any request failed."""
    command = [
        wrk_path(),
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
    ]
    script = None
    if post:
        fd, script = tempfile.mkstemp(prefix="edb-wrk-", suffix=".lua")
        with os.fdopen(fd, "w") as file:
            file.write(_POST_SCRIPT)
        command += ["-s", script]
    try:
        output = subprocess.run(
            [*command, url], capture_output=True, text=True, check=True, timeout=duration + 30
        ).stdout
    finally:
        if script is not None:
            os.unlink(script)
    match = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", output)
    if match is None:
        raise RuntimeError(f"cannot read wrk output:\n{output}")
    unit = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[match.group(3)]
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if sockets:
        # a sync worker closes each connection after its response: wrk may count that
        # close as a read error, so only connect, write and timeout errors are failures
        errors += int(sockets.group(1)) + int(sockets.group(3)) + int(sockets.group(4))
    result = WrkResult(int(match.group(1)), float(match.group(2)) * unit, errors)
    if result.errors:
        raise RuntimeError(f"wrk saw {result.errors} failed requests on {url}:\n{output}")
    return result
