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


def _run(out: Any, make: Callable[..., Any], args: tuple, options: dict[str, Any],
         warns: bool) -> None:
    try:
        warn = (lambda text: out.put(("warn", text))) if warns else None
        batch: list[Any] = []
        for resource in make(*args, warn=warn, **options):
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


def in_child(make: Callable[..., Any], *args: Any, warn: Callable[[str], None] | None = None,
             **options: Any) -> Iterator[Any]:
    """make(*args, warn=..., **options), run in a forked child; its items, in order. Closing
    the iterator early (an error in the parent) stops the child."""
    context = multiprocessing.get_context("fork")
    out = context.Queue(maxsize=DEPTH)
    child = context.Process(target=_run, args=(out, make, args, options, warn is not None),
                            daemon=True)
    child.start()
    finished = False
    try:
        while True:
            try:
                kind, payload = out.get(timeout=1.0)
            except queues.Empty:
                if not child.is_alive():
                    raise RuntimeError(f"mapping process ended early (exit code "
                                       f"{child.exitcode})") from None
                continue
            if kind == "items":
                yield from payload
            elif kind == "warn" and warn is not None:
                warn(payload)
            elif kind == "error":
                raise payload
            elif kind == "done":
                finished = True
                return
    finally:
        child.join(timeout=10 if finished else 0)  # a finished child is exiting already
        if child.is_alive():
            child.terminate()
            child.join()
        out.close()
        out.join_thread()
