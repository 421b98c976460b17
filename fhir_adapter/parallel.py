"""Run a resource producer (the loader's: map, validate, serialise and index one FHIR version
of a file) in a forked child process and stream its items back, so that on a machine with two
or more cores the R4 work, the R5 work and the store's writes run at the same time (the two
versions' work is ~2/3 of the CPU a loaded AE takes).

Items travel pickled in batches through a bounded queue: memory stays flat whatever the
file's size. Warnings and errors travel too: the parent calls `warn` and raises the child's
exception (an InputError keeps its file, row and field). Fork, not spawn: the child needs
no re-import and inherits the producer as is; only for single-threaded callers (the CLI),
never from a threaded server.
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue as queues
from collections.abc import Callable, Iterator
from typing import Any

BATCH = 200  # resources per message
DEPTH = 8  # messages in flight per child


def available() -> bool:
    """Whether this platform can fork (Linux, macOS)."""
    return "fork" in multiprocessing.get_all_start_methods()


class _Relay:
    """The child's reporter: each call travels to the parent's reporter, in order."""

    def __init__(self, out: Any) -> None:
        self._out = out

    def warn(self, text: str) -> None:
        self._out.put(("call", ("warn", (text,))))

    def finding(self, finding: Any) -> None:
        self._out.put(("call", ("finding", (finding,))))

    def progress(self, label: str, count: int, done: bool = False) -> None:
        self._out.put(("call", ("progress", (label, count, done))))


def _run(out: Any, make: Callable[..., Any], args: tuple, options: dict[str, Any],
         reports: bool) -> None:
    try:
        report = _Relay(out) if reports else None
        batch: list[Any] = []
        for resource in make(*args, report=report, **options):
            batch.append(resource)
            if len(batch) >= BATCH:
                out.put(("items", batch))
                batch = []
        if batch:
            out.put(("items", batch))
        out.put(("done", None))
    except BaseException as exc:  # the parent re-raises it
        try:
            pickle.dumps(exc)
        except Exception:
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        out.put(("error", exc))


def in_child(make: Callable[..., Any], *args: Any, report: Any = None,
             **options: Any) -> ChildStream:
    """make(*args, report=..., **options), run in a forked child started now; its items, in
    order. `report` (a pipeline Reporter, or None) gets the child's reports."""
    return ChildStream(make, args, options, report)


class ChildStream:
    """The items of a producer running in a forked child process. Closing the stream
    early (an error in the parent), started or not, stops the child."""

    def __init__(self, make: Callable[..., Any], args: tuple, options: dict[str, Any],
                 report: Any) -> None:
        context = multiprocessing.get_context("fork")
        self._out = context.Queue(maxsize=DEPTH)
        self._child = context.Process(target=_run, daemon=True,
                                      args=(self._out, make, args, options, report is not None))
        self._child.start()
        self._finished = False
        self._stopped = False
        self._items = self._receive(report)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return next(self._items)

    def close(self) -> None:
        self._items.close()
        self._stop()

    def _receive(self, report: Any) -> Iterator[Any]:
        try:
            while True:
                try:
                    kind, payload = self._out.get(timeout=1.0)
                except queues.Empty:
                    if not self._child.is_alive():
                        raise RuntimeError(f"mapping process ended early (exit code "
                                           f"{self._child.exitcode})") from None
                    continue
                if kind == "items":
                    yield from payload
                elif kind == "call" and report is not None:
                    name, args = payload
                    getattr(report, name)(*args)
                elif kind == "error":
                    raise payload
                elif kind == "done":
                    self._finished = True
                    return
        finally:
            self._stop()

    def _stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        child = self._child
        child.join(timeout=10 if self._finished else 0)  # a finished child is exiting already
        if child.is_alive():
            child.terminate()
            child.join()
        self._out.close()
        self._out.join_thread()
