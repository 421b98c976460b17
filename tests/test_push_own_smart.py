"""`fhir-adapter push` to our own gateway with SMART Backend Services switched on
(`serve --auth smart`, a client registered with `clients add`): discovery, the signed
assertion, the token, and the push itself, idempotent as without auth; a client whose
scopes do not allow writing is refused and the push says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from remote_servers import serve
from test_push import SEED, push, stored, totals

from fhir_adapter.pipeline.load import load_files

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _cli(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "fhir_adapter", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300,
                          env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def _client(tmp_path: Path, name: str, database: str, scope: str) -> tuple[str, Path]:
    """A key pair on disk and the client registered with its public JWKS: (id, PEM)."""
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP384R1())
    pem = tmp_path / f"{name}.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwks = tmp_path / f"{name}.jwks.json"
    jwks.write_text(json.dumps({"keys": [public | {"kid": name, "alg": "ES384",
                                                   "use": "sig"}]}))
    client_id = _cli("clients", "add", name, "--jwks", jwks, "--scope", scope, "--database",
                     database, cwd=tmp_path)
    return client_id, pem


def test_push_to_our_own_gateway_with_smart_on(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    load_files("study", [EXAMPLES / f"{SEED}.json"], database=source)
    load_files("enrollments", [EXAMPLES / f"{SEED}.enrollments.csv"], database=source,
               study=SEED)
    target_db = f"sqlite:///{tmp_path / 'target.db'}"
    writer, writer_pem = _client(tmp_path, "pusher", target_db, "system/*.cruds")
    reader, reader_pem = _client(tmp_path, "reader", target_db, "system/*.rs")
    with serve(target_db, tmp_path / "target.log", "--auth", "smart") as base:
        assert requests.get(f"{base}/ResearchStudy", timeout=30).status_code == 401
        args = ("--database", source, "--auth", "smart", "--scope", "system/*.cruds")
        first = push(base, *args, "--client-id", writer, "--key", writer_pem, "--key-id",
                     "pusher", cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        count = len(stored(source))
        assert totals(first.stdout) == {"created": count, "updated": 0, "unchanged": 0,
                                        "failed": 0}
        second = push(base, *args, "--client-id", writer, "--key", writer_pem, "--key-id",
                      "pusher", cwd=tmp_path)
        assert second.returncode == 0, second.stderr
        assert totals(second.stdout)["unchanged"] == count
        refused = push(base, "--database", source, "--auth", "smart", "--scope",
                       "system/*.rs", "--client-id", reader, "--key", reader_pem,
                       "--key-id", "reader", "--retries", "0", "--dry-run", cwd=tmp_path)
        assert refused.returncode == 0, refused.stderr  # a reader may compare ...
        assert totals(refused.stdout)["unchanged"] == count
        # ... but not write: new adverse events in the source, pushed by the reader.
        load_files("adverse-events", [EXAMPLES / f"{SEED}.adverse-events.csv"],
                   database=source, study=SEED)
        denied = push(base, "--database", source, "--auth", "smart", "--scope",
                      "system/*.rs", "--client-id", reader, "--key", reader_pem,
                      "--key-id", "reader", "--retries", "0", "--type", "AdverseEvent",
                      cwd=tmp_path)
        assert denied.returncode == 1
        assert totals(denied.stdout)["failed"] > 0 and "403" in denied.stderr
