"""The framework ceiling: a bare Flask app that answers each benchmarked URL with the bytes
the gateway returned for it, and nothing else (no store, no negotiation, no headers beyond
Content-Type). Served by the identical gunicorn set-up, it is the fastest the gateway could
be on this machine, so gateway req/s divided by ceiling req/s is what the gateway's own work
costs.

    FHIR_ADAPTER_BENCH_CEILING=manifest.json gunicorn "benchmarks.ceiling_app:create_app()"

The manifest maps a path with its query string to [body file, content type].
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from flask import Flask, Response, request

ENV = "FHIR_ADAPTER_BENCH_CEILING"


def create_app(manifest: str | None = None) -> Flask:
    """The bare app; `manifest` (default: $FHIR_ADAPTER_BENCH_CEILING) names the responses."""
    entries = json.loads(Path(manifest or os.environ[ENV]).read_text("utf-8"))
    bodies = {url: (Path(file).read_bytes(), ctype) for url, (file, ctype) in entries.items()}
    app = Flask(__name__)

    @app.get("/<path:_path>")
    def serve(_path: str) -> Response:
        found = bodies.get(request.full_path.rstrip("?"))
        if found is None:
            return Response(b"not in the manifest", status=404, content_type="text/plain")
        return Response(found[0], content_type=found[1])

    return app
