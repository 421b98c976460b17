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
from collections.abc import Callable, Iterable, Iterator
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
         reports: bool, on_error: Callable[[], None] | None) -> None:
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
        if on_error is not None:
            on_error()
        try:
            pickle.dumps(exc)
        except Exception:
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        out.put(("error", exc))


class Relay:
    """A one-way channel between two forked children, made in the parent before they fork:
    the child that reads a source passes its records on in batches (`sender`), the other
    takes them instead of reading the source again (`receiver`). Each stream ends with a
    marker that the sender puts also when it fails (its error reaches the parent through
    its own stream), so the receiver never waits on a sender that stopped."""

    END = "end"

    def __init__(self) -> None:
        # Unbounded: a sender never waits on a receiver that failed (the parent, reading the
        # sender's stream, would wait on it in turn). Records are small (~220 bytes pickled)
        # and the receiver, which reads no file, keeps up.
        self._queue = multiprocessing.get_context("fork").Queue()
        self._ended = False

    def sender(self, items: Iterable[Any]) -> Iterator[Any]:
        """`items`, passed through, each batch of BATCH also sent on; then the end marker."""
        batch: list[Any] = []
        for item in items:
            batch.append(item)
            if len(batch) >= BATCH:
                self._queue.put(batch)
                batch = []
            yield item
        if batch:
            self._queue.put(batch)
        self.end()

    def begin(self) -> None:
        """A new stream (the next file) starts: its end marker is still to send."""
        self._ended = False

    def end(self) -> None:
        """The stream's end marker, once (the sender's producer also calls it when it
        fails)."""
        if not self._ended:
            self._ended = True
            self._queue.put(self.END)

    def receiver(self) -> Iterator[Any]:
        """The sender's items, up to its end marker."""
        while (batch := self._queue.get()) != self.END:
            yield from batch

    def close(self) -> None:
        self._queue.close()
        self._queue.join_thread()


def in_child(make: Callable[..., Any], *args: Any, report: Any = None,
             on_error: Callable[[], None] | None = None, **options: Any) -> ChildStream:
    """make(*args, report=..., **options), run in a forked child started now; its items, in
    order. `report` (a pipeline Reporter, or None) gets the child's reports; `on_error` is
    called in the child if make fails (before its error travels to the parent)."""
    return ChildStream(make, args, options, report, on_error)


class ChildStream:
    """The items of a producer running in a forked child process. Closing the stream
    early (an error in the parent), started or not, stops the child."""

    def __init__(self, make: Callable[..., Any], args: tuple, options: dict[str, Any],
                 report: Any, on_error: Callable[[], None] | None = None) -> None:
        context = multiprocessing.get_context("fork")
        self._out = context.Queue(maxsize=DEPTH)
        self._child = context.Process(target=_run, daemon=True,
                                      args=(self._out, make, args, options, report is not None,
                                            on_error))
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
