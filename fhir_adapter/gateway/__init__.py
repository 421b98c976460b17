"""The FHIR gateway: a Flask app factory serving the store over FHIR REST.

    gunicorn "fhir_adapter.gateway:create_app()"      # production, settings from environment
    fhir-adapter serve --examples                      # development, embedded SQLite

Settings come from FHIR_ADAPTER_* environment variables (the same names without the prefix
can be passed to `create_app` and win): DATABASE_URL, PUBLIC_BASE_URL (public URL of /fhir,
for absolute links behind a proxy), MAX_COUNT, DEFAULT_COUNT, MAX_CONTENT_LENGTH (bytes),
CORS_ORIGINS (off when empty, the default; "*", or a comma-separated list), EXPORT_DIR
(scratch folder where $export and async $ingest jobs run; default the system's temporary
folder), EXPORT_RETENTION (seconds a finished job is kept; 86400), EXPORT_WORKERS (0: this
process runs no jobs), EXPORT_STALE (seconds without a heartbeat before a job is taken over;
60), EXPORT_MAX_ATTEMPTS (3); the input limits of fhir_adapter/limits.py (MAX_DEPTH,
MAX_STRING_LENGTH, MAX_PARAMS, MAX_OFFSET, MAX_ENTRIES, MAX_URL_LENGTH). Authorization
(gateway/security.py, fhir_adapter/auth): AUTH ("none" or "smart"), RATE_LIMIT
(requests a minute per client and worker with auth on; 0: no limit),
AUTH_ISSUER, AUTH_JWKS_URL, AUTH_AUDIENCE (tokens of an external issuer to accept).
DASHBOARD (the HTML dashboard at / : auto, on, off; see fhir_adapter.dashboard; auto is off
when AUTH is on).
"""

from __future__ import annotations

import logging
import os
import time
from functools import cache
from typing import Any

from flask import Blueprint, Flask

from .hooks import access_log, start, uuid4_hex
from .limits import LIMITS, GuardedFlask

__all__ = ["DEFAULTS", "access_log", "create_app", "load_settings", "uuid4_hex", "warm"]

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": "sqlite:///fhir-adapter.db",
    "PUBLIC_BASE_URL": None,
    "MAX_COUNT": 1000,
    "DEFAULT_COUNT": 20,
    "MAX_CONTENT_LENGTH": 64 * 1024 * 1024,
    "CORS_ORIGINS": "",  # off: a web page elsewhere gets no answer it can read
    "EXPORT_DIR": None,  # scratch folder where $export and $ingest jobs run (else temp)
    "EXPORT_RETENTION": 24 * 3600,  # seconds a finished $export or $ingest job is kept
    "EXPORT_WORKERS": 1,  # 0: this process runs no jobs (others sharing the store do)
    "EXPORT_STALE": 60,  # seconds without a heartbeat before another worker takes a job over
    "EXPORT_MAX_ATTEMPTS": 3,  # claims of one job before it is failed
    "AUTH": "none",  # or "smart": SMART Backend Services (gateway/security.py)
    "RATE_LIMIT": 6000,  # requests a minute per client and worker, with auth on; 0: none
    "AUTH_ISSUER": None,  # an external issuer whose tokens are accepted ...
    "AUTH_JWKS_URL": None,  # ... its keys
    "AUTH_AUDIENCE": None,  # ... and the aud its tokens carry for this server
    "DASHBOARD": "auto",  # the HTML study dashboard: auto (off when AUTH is on), on, off
    **LIMITS,  # input limits (fhir_adapter/limits.py)
}
_INTS = ("MAX_COUNT", "DEFAULT_COUNT", "MAX_CONTENT_LENGTH", "EXPORT_RETENTION", "RATE_LIMIT",
         "EXPORT_WORKERS", "EXPORT_STALE", "EXPORT_MAX_ATTEMPTS", *LIMITS)
_log = logging.getLogger("fhir_adapter.gateway")


def load_settings(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then FHIR_ADAPTER_<NAME> environment variables, then `overrides`."""
    out = dict(DEFAULTS)
    for name in DEFAULTS:
        value = os.environ.get(f"FHIR_ADAPTER_{name}")
        if value not in (None, ""):
            out[name] = value
    out.update(overrides or {})
    for name in _INTS:
        try:
            out[name] = int(out[name])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"FHIR_ADAPTER_{name} must be a whole number, "
                             f"not {out[name]!r}") from exc
    if out["MAX_COUNT"] < 1 or out["DEFAULT_COUNT"] < 1:
        raise ValueError("MAX_COUNT and DEFAULT_COUNT must be at least 1")
    if out["EXPORT_RETENTION"] < 1:
        raise ValueError("EXPORT_RETENTION must be at least 1 (seconds)")
    out["DEFAULT_COUNT"] = min(out["DEFAULT_COUNT"], out["MAX_COUNT"])
    if out["AUTH"] not in ("none", "smart"):
        raise ValueError(f"FHIR_ADAPTER_AUTH must be none or smart, not {out['AUTH']!r}")
    external = [out[n] for n in ("AUTH_ISSUER", "AUTH_JWKS_URL", "AUTH_AUDIENCE")]
    if any(external) and not all(external):
        raise ValueError("an external issuer needs AUTH_ISSUER, AUTH_JWKS_URL and "
                         "AUTH_AUDIENCE together")
    return out


def _stop_jobs_on_close(store: Any) -> None:
    """Closing the store first ends this process's job thread (exportworker.py), which
    would otherwise poll a closed (or dropped) database until it idles out."""
    from .exportworker import stop_worker

    close = store.close

    def close_after_jobs() -> None:
        stop_worker(store)
        close()

    store.close = close_after_jobs


def _fhir_blueprint() -> Blueprint:
    from . import (
        bulkexport,
        bundles,
        capability,
        compartments,
        ingestjobs,
        operations,
        patching,
        rest,
        searchparameters,
        smart,
    )

    fhir = Blueprint("fhir", __name__)
    # Operations and metadata first: their static paths must win over /<type>/<id>.
    for child in (capability.bp, smart.bp, operations.bp, bulkexport.bp, ingestjobs.bp,
                  bundles.bp, searchparameters.bp, rest.bp, patching.bp, compartments.bp):
        fhir.register_blueprint(child)
    return fhir


@cache  # once per process: every app of the process shares what it loads
def warm() -> None:
    """Load now what a worker's first requests would otherwise load on the way: the search
    parameters of both versions (~0.15-0.3 s: any search, include or write) and the FHIR
    versions the ConceptMaps validate in (~0.5 s with the fhir.resources models and schema
    validators: the CapabilityStatement, which many clients fetch first, and writes)."""
    from ..store.searchparams import search_params
    from ..validation import VERSIONS
    from . import terminology

    started = time.perf_counter()
    try:
        for version in VERSIONS:
            search_params(version, "Patient")
        terminology.served_versions()
    except Exception:  # only a head start: the request that needs it reports the error
        _log.warning("warm-up failed", exc_info=True)
        return
    _log.debug("warmed up in %.0f ms", (time.perf_counter() - started) * 1000)


def create_app(settings: dict[str, Any] | None = None) -> Flask:
    """The gateway app. `settings` may hold any DEFAULTS name, STORE (an open Store) to
    serve an existing store instead of opening DATABASE_URL, and FAST_PATH=False to send
    every request through Flask (fastpath.py answers plain reads and searches otherwise).
    The first call in a process also warms it up (`warm`), so that a fresh gunicorn
    worker's first requests do not pay for loading."""
    from . import errors

    conf = load_settings(settings)
    app = GuardedFlask(__name__, static_folder=None)  # limits.py: URL and chunked bodies
    app.config["FHIR_ADAPTER"] = conf
    app.config["MAX_CONTENT_LENGTH"] = conf["MAX_CONTENT_LENGTH"]
    store = conf.get("STORE")
    if store is None:
        from ..store import open_store

        store = open_store(conf["DATABASE_URL"])
    app.extensions["fhir_store"] = store
    _stop_jobs_on_close(store)
    errors.init_app(app)
    from ..dashboard import init_app as dashboard

    dashboard(app, conf)  # / and /studies/<id>: HTML pages reading the FHIR API
    fhir = _fhir_blueprint()
    app.register_blueprint(fhir, url_prefix="/fhir")
    app.register_blueprint(fhir, url_prefix="/fhir/R4", name="fhir_R4")
    app.register_blueprint(fhir, url_prefix="/fhir/R5", name="fhir_R5")
    app.before_request(start)
    if conf["AUTH"] == "smart":
        _authorization(app, conf, store)
    if conf.get("FAST_PATH", True):
        from .fastpath import FastPath

        app.wsgi_app = FastPath(app)  # type: ignore[method-assign]
    from .security import Guard

    # Outside both paths: every request is checked, logged and given its headers once.
    app.wsgi_app = Guard(app, app.wsgi_app, conf)  # type: ignore[method-assign]
    warm()
    return app


def _audit_engine(engine: Any) -> Any:
    """Where AuditEvents go: the store's database, except for a SQLite file, whose audit
    trail is the sibling file `<name>.audit` (SQLite has one writer, and a WAL that keeps
    growing under constant reads: audit writes in the store's file slowed its searches)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return engine
    from ..store.schema import make_engine

    return make_engine(str(url.set(database=f"{url.database}.audit")))


def _authorization(app: Flask, conf: dict[str, Any], store: Any) -> None:
    """AUTH=smart: the client registry, tokens, audit and rate limits over the store's
    database (app.extensions["fhir_auth"], read by security.py)."""
    from ..auth.audit import AuditLog
    from ..auth.ratelimit import RateLimiter
    from ..auth.registry import Registry
    from ..auth.tokens import External, Tokens
    from .security import Auth

    engine = getattr(store, "engine", None)
    if engine is None:
        raise ValueError("AUTH=smart needs a database-backed store (its clients and audit "
                         "trail are kept there)")
    external = (External(conf["AUTH_ISSUER"], conf["AUTH_JWKS_URL"], conf["AUTH_AUDIENCE"])
                if conf.get("AUTH_ISSUER") else None)
    limit = int(conf["RATE_LIMIT"])
    audit_engine = _audit_engine(engine)
    audit = AuditLog(audit_engine)
    app.extensions["fhir_auth"] = Auth(Tokens(Registry(engine), external), audit,
                                       RateLimiter(limit) if limit > 0 else None)
    close = store.close

    def close_audit_first() -> None:  # the audit's last rows, then the engine goes
        audit.close()
        if audit_engine is not engine:
            audit_engine.dispose()
        close()

    store.close = close_audit_first
