"""A push's checkpoint: a journal file with one JSON line per chunk the target has answered
(the (type, id) written or found unchanged, with the outcome), so that an interrupted push
resumes where it stopped, whatever order the store streams in. Failures are not journalled
as done: a resumed push tries them again. The file goes when a push ends with nothing failed."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any


class Checkpoint:
    """The journal of one push (target + selection); append-only, flushed per chunk."""

    def __init__(self, path: Path | None, identity: dict[str, Any]) -> None:
        """`path` None: a checkpoint kept in memory only (a dry run)."""
        self.path = path
        self.identity = identity
        self.done: set[tuple[str, str]] = set()
        self.counts: dict[str, Counter[str]] = {}
        self.resumed = False
        if path is None:
            return
        if path.exists():
            self._read()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8") as out:
                out.write(json.dumps({"push": identity}) + "\n")

    def _read(self) -> None:
        assert self.path is not None
        with self.path.open(encoding="utf-8") as lines:
            head = json.loads(next(lines, "{}") or "{}")
            if head.get("push") != self.identity:
                raise ValueError(f"{self.path} is the checkpoint of another push "
                                 f"({head.get('push')}); remove it or name another file")
            for line in lines:
                try:
                    chunk = json.loads(line)
                except ValueError:  # the last line of a push killed mid-write
                    break
                for rtype, rid, outcome in chunk["done"]:
                    self.done.add((rtype, rid))
                    self.counts.setdefault(rtype, Counter())[outcome] += 1
        self.resumed = True

    def record(self, done: list[tuple[str, str, str]]) -> None:
        """Journal one answered chunk: (type, id, created|updated|unchanged) each."""
        for rtype, rid, _ in done:
            self.done.add((rtype, rid))
        if not done or self.path is None:
            return
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"done": done}) + "\n")
            out.flush()
            os.fsync(out.fileno())

    def remove(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def default_path(identity: dict[str, Any]) -> Path:
    """./.fhir-adapter-push-<hash of target and selection>.journal"""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return Path(f".fhir-adapter-push-{digest}.journal")
