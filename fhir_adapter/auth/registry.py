"""Registered backend clients (SMART Backend Services): name, scopes and public keys, kept in
the database. A client's keys are a JWKS given as a file (stored; replace it with `clients
rotate --jwks FILE`) or a URL (fetched when a token request names a key id not seen yet, so
a client rotates by publishing its new key there)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import requests
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from .scopes import parse_scope
from .tables import clients, create_tables

# Algorithms SMART Backend Services requires servers to support; nothing else is accepted.
ALGORITHMS = ("RS384", "ES384")
_FETCH_TIMEOUT = 10


class RegistryError(ValueError):
    """A client cannot be registered or changed as asked (the message says why)."""


@dataclass(frozen=True)
class Client:
    """A registered client."""

    client_id: str
    name: str
    scope: str
    jwks: dict[str, Any] | None
    jwks_url: str | None
    created: str
    updated: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def load_jwks(source: str) -> tuple[dict[str, Any] | None, str | None]:
    """(key set, None) from a file, or (None, URL) after checking that the URL serves one."""
    if source.startswith(("https://", "http://")):
        check_jwks(fetch_jwks(source), source)
        return None, source
    path = Path(source)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RegistryError(f"{source}: cannot read the JWKS file ({exc.strerror})") from exc
    except ValueError as exc:
        raise RegistryError(f"{source}: not JSON ({exc})") from exc
    check_jwks(data, source)
    return data, None


def fetch_jwks(url: str) -> dict[str, Any]:
    """The key set a URL serves."""
    try:
        response = requests.get(url, timeout=_FETCH_TIMEOUT)
        response.raise_for_status()
        return response.json()
    except (requests.RequestException, ValueError) as exc:
        raise RegistryError(f"{url}: cannot fetch a JWKS ({exc})") from exc


def check_jwks(data: Any, where: str) -> None:
    """RegistryError unless `data` is a key set holding public RSA or EC keys only."""
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not keys:
        raise RegistryError(f"{where}: a JWKS is an object with a non-empty 'keys' list")
    for i, key in enumerate(keys):
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC"):
            raise RegistryError(f"{where}: keys[{i}] is not an RSA or EC key")
        if "d" in key:
            raise RegistryError(f"{where}: keys[{i}] holds a private key; register the "
                                "public key set only")
        try:
            jwt.PyJWK(key, key.get("alg") or ("RS384" if key["kty"] == "RSA" else "ES384"))
        except jwt.PyJWTError as exc:
            raise RegistryError(f"{where}: keys[{i}] is not a usable key ({exc})") from exc


def check_scope(scope: str) -> str:
    """The scope string, normalised; RegistryError for a scope this server cannot grant."""
    parts = scope.split()
    if not parts:
        raise RegistryError("a client needs at least one scope, e.g. system/ResearchStudy.rs")
    bad = [p for p in parts if parse_scope(p) is None]
    if bad:
        raise RegistryError(f"not a system scope: {bad[0]!r} (expected system/Type.cruds, "
                            "e.g. system/ResearchStudy.rs, or system/Type.read|write)")
    return " ".join(parts)


class Registry:
    """Clients in one database, with their key sets cached in this process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(engine)
        self._keys: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def add(self, name: str, jwks_source: str, scope: str) -> Client:
        """Register a client; its new client_id is in the result."""
        scope = check_scope(scope)
        jwks, url = load_jwks(jwks_source)
        now = _now()
        client = Client(uuid.uuid4().hex, name, scope, jwks, url, now, now)
        try:
            with self.engine.connect().execution_options(fhir_write=True) as conn, \
                    conn.begin():
                conn.execute(insert(clients).values(
                    client_id=client.client_id, name=name, scope=scope,
                    jwks=json.dumps(jwks) if jwks else None, jwks_url=url,
                    created=now, updated=now))
        except IntegrityError as exc:
            raise RegistryError(f"a client named {name!r} is already registered") from exc
        return client

    def all(self) -> list[Client]:
        """Every client, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(clients).order_by(clients.c.name)).mappings().all()
        return [_client(r) for r in rows]

    def get(self, client_id: str) -> Client | None:
        """The client with this id, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(clients).where(clients.c.client_id == client_id)
                               ).mappings().first()
        return _client(row) if row else None

    def find(self, name_or_id: str) -> Client:
        """The client with this name or id (RegistryError when none)."""
        for client in self.all():
            if name_or_id in (client.name, client.client_id):
                return client
        raise RegistryError(f"no client named {name_or_id!r}")

    def remove(self, name_or_id: str) -> Client:
        """Delete a client: its tokens stop being issued at once (issued ones expire)."""
        client = self.find(name_or_id)
        with self.engine.connect().execution_options(fhir_write=True) as conn, conn.begin():
            conn.execute(delete(clients).where(clients.c.client_id == client.client_id))
        return client

    def change(self, name_or_id: str, jwks_source: str | None = None,
               scope: str | None = None) -> Client:
        """Replace a client's keys (rotation) and/or scopes."""
        client = self.find(name_or_id)
        values: dict[str, Any] = {"updated": _now()}
        if jwks_source is not None:
            jwks, url = load_jwks(jwks_source)
            values.update(jwks=json.dumps(jwks) if jwks else None, jwks_url=url)
        if scope is not None:
            values["scope"] = check_scope(scope)
        with self.engine.connect().execution_options(fhir_write=True) as conn, conn.begin():
            conn.execute(update(clients).where(clients.c.client_id == client.client_id)
                         .values(**values))
        with self._lock:
            self._keys.pop(client.client_id, None)
        return self.find(client.client_id)

    def key_set(self, client: Client, kid: str | None) -> dict[str, Any]:
        """The client's current key set. A URL's set is cached, and fetched again when a
        token names a key id it lacks (at most every 10 s: a stranger cannot make us fetch
        in a loop)."""
        if client.jwks is not None:
            return client.jwks
        assert client.jwks_url is not None
        with self._lock:
            cached = self._keys.get(client.client_id)
        if cached and (kid is None or any(k.get("kid") == kid for k in cached[1]["keys"])
                       or time.monotonic() - cached[0] < 10):
            return cached[1]
        data = fetch_jwks(client.jwks_url)
        check_jwks(data, client.jwks_url)
        with self._lock:
            self._keys[client.client_id] = (time.monotonic(), data)
        return data


def _client(row: Any) -> Client:
    return Client(row["client_id"], row["name"], row["scope"],
                  json.loads(row["jwks"]) if row["jwks"] else None, row["jwks_url"],
                  row["created"], row["updated"])
