"""gunicorn servers on 127.0.0.1 for the serving and start-up benchmarks: the gateway and the
bare-Flask ceiling, started the same way (same worker class, workers, threads, flags), so the
only difference measured is the application. `Server.worker_cpu` reads each worker's CPU time
from /proc, so a benchmark can tell whether every worker took part in a load run."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import OUT, PYTHON, ROOT, child_env, die_with_parent, free_port

GATEWAY_APP = "fhir_adapter.gateway:create_app()"
CEILING_APP = "benchmarks.ceiling_app:create_app()"
THREADS = 4  # gthread: threads per worker


@dataclass(frozen=True)
class Setup:
    """A gunicorn configuration: worker class and count (threads for gthread)."""

    worker_class: str  # "sync" | "gthread"
    workers: int = 2
    preload: bool = False  # --preload: the master loads the app before it listens and forks
    # --reuse-port: each worker listens on a socket of its own (gunicorn >= 23), so the
    # kernel spreads connections over the workers instead of the first to wake taking them
    reuse_port: bool = False

    @property
    def label(self) -> str:
        extra = f", {THREADS} threads" if self.worker_class == "gthread" else ""
        extra += ", --preload" if self.preload else ""
        extra += ", --reuse-port" if self.reuse_port else ""
        return f"gunicorn {self.workers} {self.worker_class} workers{extra}"

    def args(self) -> list[str]:
        out = ["-w", str(self.workers), "-k", self.worker_class]
        out += ["--preload"] if self.preload else []
        out += ["--reuse-port"] if self.reuse_port else []
        return out + (["--threads", str(THREADS)] if self.worker_class == "gthread" else [])


@dataclass
class Server:
    """A running gunicorn: where it listens, and when it answered first."""

    base: str
    port: int
    process: subprocess.Popen[bytes]
    started: float  # perf_counter at spawn
    ready: float  # perf_counter when the port first accepted a connection

    def worker_cpu(self) -> dict[int, float]:
        """{worker pid: user + system CPU seconds so far} of the master's children (Linux;
        empty where /proc cannot be read)."""
        return worker_cpu(self.process.pid)


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def worker_cpu(master: int) -> dict[int, float]:
    """{pid: user + system CPU seconds} of every live child of process `master`."""
    out: dict[int, float] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:  # exited since the listing
            continue
        # Fields after the command name (which may hold spaces or parentheses): state, ppid,
        # ..., utime and stime are the 12th and 13th of them (proc(5) fields 14 and 15).
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 12 and int(fields[1]) == master:
            out[int(entry)] = (int(fields[11]) + int(fields[12])) / _TICK
    return out


def get(port: int, path: str, accept: str = "application/fhir+json",
        timeout: float = 10) -> tuple[int, str, bytes]:
    """(status, content type, body) of one GET on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept": accept})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


def _wait_port(port: int, process: subprocess.Popen[bytes], timeout: float) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.connect()
            conn.close()
            return time.perf_counter()
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"the server did not listen on port {port} within {timeout:.0f} s")


def _no_control_socket() -> list[str]:
    """gunicorn >= 25 opens a control socket at one fixed path per user: concurrent servers
    (ours, the test suite's) would fight over it, and nothing here uses it."""
    from gunicorn.config import KNOWN_SETTINGS

    return (["--no-control-socket"]
            if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS) else [])


@contextmanager
def gunicorn(app: str, setup: Setup, env: dict[str, str] | None = None,
             timeout: float = 60, cwd: Path | None = None) -> Iterator[Server]:
    """Run `app` under gunicorn with `setup` on a free loopback port until the block ends
    (`cwd`: another checkout's folder, whose code it then runs)."""
    port = free_port()
    cmd = [PYTHON, "-m", "gunicorn", *setup.args(), "-b", f"127.0.0.1:{port}",
           "--graceful-timeout", "5", "--timeout", "120", *_no_control_socket(), app]
    with serve(cmd, port, env, timeout, cwd) as server:
        yield server


@contextmanager
def uvicorn(app: str, workers: int, env: dict[str, str] | None = None, timeout: float = 90,
            cwd: Path | None = None, factory: bool = True) -> Iterator[Server]:
    """Run ASGI `app` under uvicorn with `workers` processes on a free loopback port."""
    port = free_port()
    cmd = [PYTHON, "-m", "uvicorn", app, *(["--factory"] if factory else []),
           "--workers", str(workers), "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", "--no-access-log"]
    with serve(cmd, port, env, timeout, cwd) as server:
        yield server


@contextmanager
def serve(cmd: list[str], port: int, env: dict[str, str] | None = None,
          timeout: float = 60, cwd: Path | None = None) -> Iterator[Server]:
    """Run server command `cmd` (listening on `port`) until the block ends; SIGTERM, then
    SIGKILL to its own session."""
    OUT.mkdir(parents=True, exist_ok=True)
    log = open(OUT / f"server-{port}.log", "wb")  # closed in the finally below
    started = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd or ROOT,
                               env=child_env(**(env or {})), start_new_session=True,
                               preexec_fn=die_with_parent)
    try:
        ready = _wait_port(port, process, timeout)
        yield Server(f"http://127.0.0.1:{port}", port, process, started, ready)
    except RuntimeError as exc:
        log.flush()
        tail = (OUT / f"server-{port}.log").read_bytes()[-600:].decode(errors="replace")
        raise RuntimeError(f"{exc}: {tail}") from exc
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)  # the master stops its own workers
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # its own session: only its workers
                process.wait()
        log.close()
        (OUT / f"server-{port}.log").unlink(missing_ok=True)


def connections_per_worker(master: int, port: int) -> list[int]:
    """How many established TCP connections to `port` each live child of `master` holds,
    most first (Linux /proc; empty where it cannot be read): whether a load's keep-alive
    connections were spread over the workers or landed on one."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()  # sl local remote state ... inode (10th)
            if len(fields) > 9 and fields[3] == "01" and \
                    int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    counts = []
    for pid in worker_cpu(master):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        held = 0
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            held += target.startswith("socket:[") and target[8:-1] in inodes
        counts.append(held)
    return sorted(counts, reverse=True)


def scheduler_times(master: int) -> tuple[float, float]:
    """(CPU seconds, seconds runnable but waiting for a CPU) summed over every thread of
    every live child of `master`, from /proc/<pid>/task/<tid>/schedstat (Linux; zeros where
    it cannot be read): on a busy machine, how long the workers queued for a core."""
    cpu = wait = 0
    for pid in worker_cpu(master):
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                    ran, waited, _ = fh.read().split()
            except (OSError, ValueError):
                continue
            cpu, wait = cpu + int(ran), wait + int(waited)
    return cpu / 1e9, wait / 1e9
