"""Writing mapped resources: one `collection` Bundle or NDJSON, all or nothing.

Output goes to a temporary file first and replaces the target only when every record
mapped and validated, so a failed run never leaves a half-written file (or half a Bundle
on stdout).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from .errors import InputError, Issue
from .validation import FhirVersion, validate

_OPTS = orjson.OPT_INDENT_2


def dumps(resource: dict[str, Any]) -> bytes:
    """Canonical JSON bytes for output and golden files (key order as mapped)."""
    return orjson.dumps(resource, option=_OPTS)


def _write_bundle(fh: BinaryIO, resources: Iterable[dict[str, Any]]) -> int:
    # Streamed entry by entry: a 200k-row load never holds the Bundle in memory.
    fh.write(b'{\n  "resourceType": "Bundle",\n  "type": "collection",\n  "entry": [')
    count = 0
    for resource in resources:
        entry = {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}
        body = orjson.dumps(entry, option=_OPTS).replace(b"\n", b"\n    ")
        fh.write((b"\n    " if count == 0 else b",\n    ") + body)
        count += 1
    fh.write(b"\n  ]\n}\n" if count else b"]\n}\n")
    return count


def _write_ndjson(fh: BinaryIO, resources: Iterable[dict[str, Any]]) -> int:
    count = 0
    for resource in resources:
        fh.write(orjson.dumps(resource) + b"\n")
        count += 1
    return count


def validated(resources: Iterable[dict[str, Any]], version: FhirVersion,
              source: str) -> Iterable[dict[str, Any]]:
    """Pass resources through, stopping at the first that is not valid FHIR `version`.

    Every resource meets the official schema; the fhir.resources model checks each distinct
    structure once (validation.validate, model="per-shape"): that keeps bulk mapping fast.
    """
    for resource in resources:
        issues = validate(resource, version, model="per-shape")
        if issues:
            raise invalid_error(resource, version, source, issues)
        yield resource


def invalid_error(resource: dict[str, Any], version: FhirVersion, source: str,
                  issues: list[Issue]) -> InputError:
    """The error that stops a run at a mapped resource `validate` found `issues` in."""
    where = f"{resource.get('resourceType')}/{resource.get('id')}"
    return InputError(source, f"mapped {where} is not valid FHIR {version}: "
                      + "; ".join(str(i) for i in issues[:5]))


def write_resources(resources: Iterable[dict[str, Any]], output: str | None,
                    ndjson: bool = False) -> int:
    """Write all resources as a Bundle (or NDJSON) to `output` or stdout; returns the count.

    Nothing reaches the destination unless the whole iterable was consumed without error.
    """
    target_dir = Path(output).resolve().parent if output else None
    fd, tmp = tempfile.mkstemp(prefix=".fhir-adapter-", suffix=".tmp",
                               dir=str(target_dir) if target_dir else None)
    try:
        with os.fdopen(fd, "wb") as fh:
            count = (_write_ndjson if ndjson else _write_bundle)(fh, resources)
        if output:
            os.replace(tmp, output)
        else:
            with open(tmp, "rb") as fh:
                shutil.copyfileobj(fh, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        return count
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
