"""End to end with authorization on: the gateway (AUTH=smart) on a real HTTP server on
loopback; a backend client gets its token over HTTP and reads with fhirclient and fhirpy
passing the Authorization header; an external issuer's tokens (keys served over HTTP) are
accepted with the scopes of their `scp` claim."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from fhirclient import client as fhirclient_client
from fhirclient.models.researchstudy import ResearchStudy
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ForbiddenError
from loopback import wsgi
from smart_keys import assertion, rsa_key, token_form
from test_auth_smart import register

from fhir_adapter.gateway import create_app

TAG = uuid.uuid4().hex[:10]


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'fhir.db'}"


def test_fhirclient_and_fhirpy_with_a_bearer_token(database: str, tmp_path: Path) -> None:
    key = rsa_key()
    cid = register(database, "e2e", key.write(tmp_path),
                   "system/ResearchStudy.cruds system/ResearchSubject.rs")
    app = create_app({"DATABASE_URL": database, "AUTH": "smart"})
    try:
        with wsgi(app) as root:
            base = f"{root}/fhir"
            conf = requests.get(f"{base}/.well-known/smart-configuration", timeout=10).json()
            r = requests.post(conf["token_endpoint"], data=token_form(
                assertion(key, cid, conf["token_endpoint"]), "system/ResearchStudy.cruds"),
                timeout=10)
            assert r.status_code == 200, r.text
            token = r.json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            assert requests.get(f"{base}/ResearchStudy", timeout=10).status_code == 401

            fhirpy = SyncFHIRClient(base, authorization=f"Bearer {token}")
            study = fhirpy.resource("ResearchStudy", id=f"{TAG}-s", status="active")
            study.save()
            found = fhirpy.resources("ResearchStudy").search(_id=f"{TAG}-s").fetch()
            assert [s.id for s in found] == [f"{TAG}-s"]
            with pytest.raises(ForbiddenError):
                fhirpy.resources("Patient").fetch()  # 403

            smart = fhirclient_client.FHIRClient(settings={"app_id": "e2e", "api_base": base})
            smart.server.session.headers.update(auth)
            read = ResearchStudy.read(f"{TAG}-s", smart.server)
            assert read.status == "active"

            plain = requests.get(f"{base}/ResearchStudy/{TAG}-s", headers=auth, timeout=10)
            assert plain.headers["Cache-Control"] == "no-store"
            assert plain.headers["X-Content-Type-Options"] == "nosniff"
    finally:
        app.extensions["fhir_store"].close()


def _jwks_app(jwks: dict[str, Any]) -> Any:
    body = json.dumps(jwks).encode()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    return app


def test_an_external_issuers_tokens(database: str) -> None:
    key = rsa_key()
    with wsgi(_jwks_app(key.jwks())) as keys_root:
        issuer, audience = "https://idp.example/realms/trials", "fhir-adapter-api"
        app = create_app({"DATABASE_URL": database, "AUTH": "smart",
                          "AUTH_ISSUER": issuer, "AUTH_JWKS_URL": f"{keys_root}/jwks",
                          "AUTH_AUDIENCE": audience})
        try:
            c = app.test_client()
            now = int(time.time())

            def token(**claims: Any) -> dict[str, str]:
                body = {"iss": issuer, "aud": audience, "exp": now + 300, "azp": "etl",
                        "scp": ["system/ResearchStudy.rs"], **claims}
                signed = jwt.encode(body, key.private, algorithm="RS256",
                                    headers={"kid": key.kid})
                return {"Authorization": f"Bearer {signed}"}

            assert c.get("/fhir/ResearchStudy", headers=token()).status_code == 200
            assert c.get("/fhir/Patient", headers=token()).status_code == 403
            assert c.get("/fhir/ResearchStudy", headers=token(
                scope="system/Patient.rs", scp=None)).status_code == 403  # scope, not scp
            assert c.get("/fhir/Patient", headers=token(
                scope="system/Patient.rs", scp=None)).status_code == 200
            for bad in (token(aud="someone-else"), token(exp=now - 3600),
                        token(iss="https://other.example")):
                assert c.get("/fhir/ResearchStudy", headers=bad).status_code == 401
        finally:
            app.extensions["fhir_store"].close()
