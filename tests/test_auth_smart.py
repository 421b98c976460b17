"""SMART Backend Services on the gateway (AUTH=smart), with real keys and tokens: the token
endpoint's checks, scopes on every interaction, the audit trail, safe defaults. On SQLite
and PostgreSQL (one database per backend, clients registered with the CLI)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from gateway_fixtures import database_url
from smart_keys import Key, assertion, ec_key, rsa_key, token_form

from fhir_adapter.cli import cli
from fhir_adapter.gateway import create_app
from fhir_adapter.validation import validate

__all__ = ["database_url"]
BASE = "http://gw.example/fhir"
TOKEN_URL = f"{BASE}/auth/token"
STUDY_SCOPE = "system/ResearchStudy.rs system/ResearchSubject.rs"
TAG = uuid.uuid4().hex[:10]


def register(database: str, name: str, jwks: Path | str, scope: str) -> str:
    result = CliRunner().invoke(cli, ["clients", "add", name, "--jwks", str(jwks),
                                      "--scope", scope, "--database", database])
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


class Setup:
    """The app, its clients and their keys."""

    def __init__(self, database: str, folder: Path) -> None:
        self.database = database
        self.app = create_app({"DATABASE_URL": database, "PUBLIC_BASE_URL": BASE,
                               "AUTH": "smart", "RATE_LIMIT": 0,
                               "EXPORT_DIR": str(folder / "exports")})
        self.keys: dict[str, Key] = {}
        self.ids: dict[str, str] = {}
        for name, key, scope in (
                ("study", rsa_key(), STUDY_SCOPE), ("auditor", ec_key(), "system/AuditEvent.rs"),
                ("admin", rsa_key(), "system/*.cruds"), ("v1", ec_key(), "system/Patient.read")):
            self.keys[name] = key
            self.ids[name] = register(database, f"{name}-{TAG}", key.write(folder), scope)

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def token(self, name: str, scope: str, **claims: Any) -> str:
        form = token_form(assertion(self.keys[name], self.ids[name], TOKEN_URL, **claims), scope)
        r = self.client().post("/fhir/auth/token", data=form)
        assert r.status_code == 200, r.get_data(as_text=True)
        assert r.headers["Cache-Control"] == "no-store"
        return r.json["access_token"]


@pytest.fixture(scope="module")
def setup(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    s = Setup(database_url, tmp_path_factory.mktemp("smart"))
    admin = {"Authorization": f"Bearer {s.token('admin', 'system/*.cruds')}"}
    c = s.client()
    for rtype, body in (
            ("ResearchStudy", {"status": "active"}),
            ("Patient", {"gender": "female"}),
            ("ResearchSubject", {"status": "on-study", "study": {
                "reference": f"ResearchStudy/{TAG}-study"}, "individual": {
                "reference": f"Patient/{TAG}-patient"}}),
            ("AdverseEvent", {"actuality": "actual", "subject": {
                "reference": f"Patient/{TAG}-patient"}})):
        rid = f"{TAG}-{rtype.lower().replace('research', '')}"
        r = c.put(f"/fhir/{rtype}/{rid}", json={"resourceType": rtype, "id": rid, **body},
                  headers=admin)
        assert r.status_code == 201, r.get_data(as_text=True)
    yield s
    s.app.extensions["fhir_store"].close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_discovery_and_metadata_are_open(setup: Setup) -> None:
    c = setup.client()
    conf = c.get("/fhir/.well-known/smart-configuration").json
    assert conf["token_endpoint"] == TOKEN_URL
    assert conf["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert conf["grant_types_supported"] == ["client_credentials"]
    assert set(conf["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
    statement = c.get("/fhir/metadata").json
    security = statement["rest"][0]["security"]
    uris = security["extension"][0]
    assert uris["url"].endswith("/oauth-uris")
    assert uris["extension"] == [{"url": "token", "valueUri": TOKEN_URL}]
    r5 = c.get("/fhir/R5/.well-known/smart-configuration").json
    assert r5["token_endpoint"] == f"{BASE}/R5/auth/token"


@pytest.mark.parametrize("path", [f"/fhir/ResearchStudy/{TAG}-study", "/fhir/Patient",
                                  "/fhir/AuditEvent", "/fhir/_history", "/elsewhere"])
def test_no_token_is_401_with_www_authenticate(setup: Setup, path: str) -> None:
    for headers in ({}, {"Authorization": "Basic eDp5"}, _bearer("not-a-jwt")):
        r = setup.client().get(path, headers=headers)
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"].startswith('Bearer realm="fhir-adapter"')
        assert r.json["resourceType"] == "OperationOutcome"
        assert r.json["issue"][0]["code"] == "login"


def test_the_study_client_reads_studies_and_subjects_and_nothing_else(setup: Setup) -> None:
    headers = _bearer(setup.token("study", STUDY_SCOPE))
    c = setup.client()
    allowed = [f"/fhir/ResearchStudy/{TAG}-study", f"/fhir/ResearchStudy?_id={TAG}-study",
               f"/fhir/ResearchSubject/{TAG}-subject",
               f"/fhir/ResearchSubject?study=ResearchStudy/{TAG}-study",
               f"/fhir/R5/ResearchStudy/{TAG}-study", f"/fhir/ResearchStudy/{TAG}-study/_history",
               f"/fhir/ResearchStudy/{TAG}-study/_history/1",
               f"/fhir/ResearchSubject?_id={TAG}-subject&_include=ResearchSubject:study",
               f"/fhir/ResearchStudy?_id={TAG}-study&_revinclude=ResearchSubject:study",
               # chains and _has that stay within the granted types
               f"/fhir/ResearchSubject?study:ResearchStudy._id={TAG}-study",
               f"/fhir/ResearchSubject?study.partof._id={TAG}-study",
               f"/fhir/ResearchStudy?_has:ResearchSubject:study:_id={TAG}-subject",
               f"/fhir/ResearchStudy?_has:ResearchSubject:study:study._id={TAG}-study"]
    for path in allowed:
        r = c.get(path, headers=headers)
        assert r.status_code == 200, (path, r.get_data(as_text=True))
        assert r.headers["Cache-Control"] == "no-store"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    for path in (allowed[-4], *allowed[-2:]):  # the study has no partOf: -3 finds none
        assert c.get(path, headers=headers).json["total"] == 1, path
    refused = [f"/fhir/Patient/{TAG}-patient", "/fhir/Patient", "/fhir/AdverseEvent",
               f"/fhir/ResearchSubject?_id={TAG}-subject&_include=ResearchSubject:individual",
               f"/fhir/ResearchSubject?_id={TAG}-subject&_include=ResearchSubject:*",
               f"/fhir/ResearchSubject?_id={TAG}-subject&_include=*",
               f"/fhir/ResearchSubject?_id={TAG}-subject&_include:iterate=*",
               f"/fhir/ResearchStudy?_id={TAG}-study&_revinclude=AdverseEvent:study",
               "/fhir/ResearchSubject?individual.gender=female", "/fhir/AuditEvent",
               # a type outside the grant, reached through a later link or a nested _has
               "/fhir/ResearchSubject?study.sponsor.name=x",
               "/fhir/ResearchSubject?study.partof.sponsor:Organization.name=x",
               "/fhir/ResearchStudy?_has:ResearchSubject:study:individual.gender=female",
               "/fhir/ResearchStudy?_has:AdverseEvent:study:seriousness=x",
               "/fhir/ResearchStudy?_has:ResearchSubject:study:_has:AdverseEvent:subject:"
               "seriousness=x",
               "/fhir/ResearchSubject?individual:identifier=x|y&study.identifier=y"
               "&study._has:AdverseEvent:study:seriousness=x",
               "/fhir/_history", f"/fhir/Patient/{TAG}-patient/_history",
               "/fhir/ConceptMap/$translate?system=x&code=y"]
    for path in refused:
        r = c.get(path, headers=headers)
        assert r.status_code == 403, (path, r.get_data(as_text=True))
        assert r.json["issue"][0]["code"] == "forbidden"
    study = {"resourceType": "ResearchStudy", "id": f"{TAG}-study", "status": "completed"}
    assert c.put(f"/fhir/ResearchStudy/{TAG}-study", json=study,
                 headers=headers).status_code == 403
    assert c.delete(f"/fhir/ResearchSubject/{TAG}-subject", headers=headers).status_code == 403
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": f"ResearchStudy/{TAG}-study"}},
        {"request": {"method": "GET", "url": f"Patient/{TAG}-patient"}},
        {"request": {"method": "GET", "url": "AdverseEvent?_count=1"}}]}
    out = c.post("/fhir", json=bundle, headers=headers).json
    assert [e["response"]["status"] for e in out["entry"]] == ["200 OK", "403 Forbidden",
                                                               "403 Forbidden"]
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient"}, "request": {"method": "POST",
                                                               "url": "Patient"}}]}
    assert c.post("/fhir", json=transaction, headers=headers).status_code == 403
    assert c.post("/fhir/$ingest?kind=study", headers=headers).status_code == 403
    r = c.post("/fhir/Patient/$validate", json={"resourceType": "Patient"}, headers=headers)
    assert r.status_code == 403


def test_patch_compartments_and_search_parameters_need_their_scopes(setup: Setup) -> None:
    c = setup.client()
    study = _bearer(setup.token("study", STUDY_SCOPE))
    patch = [{"op": "replace", "path": "/status", "value": "completed"}]
    json_patch = {"Content-Type": "application/json-patch+json"}
    # read and search on ResearchStudy, but no update: the patch is refused before it reads
    r = c.patch(f"/fhir/ResearchStudy/{TAG}-study", json=patch, headers={**study, **json_patch})
    assert r.status_code == 403, r.get_data(as_text=True)
    r = c.patch(f"/fhir/ResearchStudy?_id={TAG}-study", json=patch,
                headers={**study, **json_patch})
    assert r.status_code == 403
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [{
        "resource": {"resourceType": "Binary", "contentType": "application/json-patch+json",
                     "data": "W3sib3AiOiAicmVwbGFjZSIsICJwYXRoIjogIi9zdGF0dXMiLCAidmFsdWUiOiAi"
                             "Y29tcGxldGVkIn1d"},
        "request": {"method": "PATCH", "url": f"ResearchStudy/{TAG}-study"}}]}
    assert c.post("/fhir", json=transaction, headers=study).status_code == 403
    for path in (f"/fhir/Patient/{TAG}-patient/AdverseEvent", f"/fhir/Patient/{TAG}-patient/*",
                 "/fhir/SearchParameter?code=identifier"):
        r = c.get(path, headers=study)
        assert r.status_code == 403, (path, r.get_data(as_text=True))
    # with the scopes, the same requests are served
    events = _bearer(setup.token("admin", "system/AdverseEvent.rs system/Patient.rs"))
    r = c.get(f"/fhir/Patient/{TAG}-patient/AdverseEvent", headers=events)
    assert r.status_code == 200 and r.json["total"] == 1
    assert c.get(f"/fhir/Patient/{TAG}-patient/*", headers=events).status_code == 403
    writer = _bearer(setup.token("admin", "system/ResearchStudy.rus"))
    r = c.patch(f"/fhir/ResearchStudy/{TAG}-study", json=patch,
                headers={**writer, **json_patch})
    assert r.status_code == 200 and r.json["status"] == "completed", r.get_data(as_text=True)


def test_an_async_ingest_job_is_its_clients_alone(setup: Setup) -> None:
    c = setup.client()
    admin = _bearer(setup.token("admin", "system/*.cruds"))
    study = (Path(__file__).resolve().parents[1] / "examples" / "NCT05003921.json").read_bytes()
    r = c.post("/fhir/$ingest?kind=study", data=study,
               headers={**admin, "Content-Type": "application/json",
                        "Prefer": "respond-async"})
    assert r.status_code == 202, r.get_data(as_text=True)
    status = r.headers["Content-Location"].removeprefix(BASE)
    other = _bearer(setup.token("study", STUDY_SCOPE))
    assert c.get(f"/fhir{status}", headers=other).status_code == 404
    assert c.delete(f"/fhir{status}", headers=other).status_code == 404
    for _ in range(300):
        answer = c.get(f"/fhir{status}", headers=admin)
        if answer.status_code != 202:
            break
        time.sleep(0.1)
    assert answer.status_code == 200, answer.get_data(as_text=True)


def test_export_writes_only_permitted_types(setup: Setup) -> None:
    headers = {**_bearer(setup.token("study", STUDY_SCOPE)), "Prefer": "respond-async"}
    c = setup.client()
    assert c.get("/fhir/$export?_type=Patient", headers=headers).status_code == 403
    r = c.get("/fhir/$export", headers=headers)
    assert r.status_code == 202
    job = r.headers["Content-Location"].removeprefix(BASE)
    from fhir_adapter.store.jobs import Jobs  # export jobs live in the database

    stored = Jobs(setup.app.extensions["fhir_store"].engine).get(job.rsplit("/", 1)[-1])
    assert stored is not None
    assert stored.request["types"] == ["ResearchStudy", "ResearchSubject"]
    other = _bearer(setup.token("admin", "system/*.rs"))
    assert c.get(f"/fhir{job}", headers=other).status_code == 404  # not another client's


def test_scope_forms_v1_and_narrowing(setup: Setup) -> None:
    c = setup.client()
    v1 = _bearer(setup.token("v1", "system/Patient.read"))
    assert c.get(f"/fhir/Patient/{TAG}-patient", headers=v1).status_code == 200
    assert c.get(f"/fhir/Patient?_id={TAG}-patient", headers=v1).status_code == 200
    narrow = _bearer(setup.token("study", "system/ResearchStudy.r"))
    assert c.get(f"/fhir/ResearchStudy/{TAG}-study", headers=narrow).status_code == 200
    assert c.get("/fhir/ResearchStudy", headers=narrow).status_code == 403
    form = token_form(assertion(setup.keys["study"], setup.ids["study"], TOKEN_URL),
                      "system/Patient.rs")
    r = c.post("/fhir/auth/token", data=form)
    assert r.status_code == 400 and r.json["error"] == "invalid_scope"


def _refused(setup: Setup, form: dict[str, str]) -> dict[str, Any]:
    r = setup.client().post("/fhir/auth/token", data=form)
    assert r.status_code in (400, 401), r.get_data(as_text=True)
    assert "access_token" not in r.json
    return r.json


def test_token_requests_that_must_fail(setup: Setup, tmp_path: Path) -> None:
    key, cid = setup.keys["study"], setup.ids["study"]
    once = assertion(key, cid, TOKEN_URL)
    assert setup.client().post("/fhir/auth/token",
                               data=token_form(once, STUDY_SCOPE)).status_code == 200
    replay = _refused(setup, token_form(once, STUDY_SCOPE))
    assert "jti" in replay["error_description"]
    cases = {
        "expired": assertion(key, cid, TOKEN_URL, exp=-120),
        "too long": assertion(key, cid, TOKEN_URL, exp=3600),
        "wrong aud": assertion(key, cid, "http://elsewhere.example/token"),
        "not its key": assertion(rsa_key(), cid, TOKEN_URL),
        "other client's key": assertion(setup.keys["admin"], cid, TOKEN_URL),
        "sub differs": assertion(key, cid, TOKEN_URL, sub="someone-else"),
        "unknown client": assertion(key, "no-such-client", TOKEN_URL),
        "alg none": jwt.encode({"iss": cid, "sub": cid, "aud": TOKEN_URL, "exp": 2**31,
                                "jti": uuid.uuid4().hex}, None, algorithm="none"),
        "HS256 with the public key as secret": jwt.encode(
            {"iss": cid, "sub": cid, "aud": TOKEN_URL, "exp": 2**31, "jti": "x"},
            "a-shared-secret-of-thirty-two-bytes!", algorithm="HS256"),
    }
    for name, value in cases.items():
        assert _refused(setup, token_form(value, STUDY_SCOPE))["error"] == "invalid_client", name
    form = token_form(assertion(key, cid, TOKEN_URL), STUDY_SCOPE)
    assert _refused(setup, {**form, "grant_type": "password"})["error"] == \
        "unsupported_grant_type"
    assert _refused(setup, {**form, "client_assertion_type": "x"})["error"] == \
        "invalid_request"


def test_tampered_and_unsigned_access_tokens_are_401(setup: Setup) -> None:
    token = setup.token("study", STUDY_SCOPE)
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] = "system/*.cruds"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    unsigned = jwt.encode(claims, None, algorithm="none")
    for bad in (f"{head}.{forged}.{sig}", unsigned, token[:-4] + "AAAA"):
        r = setup.client().get(f"/fhir/Patient/{TAG}-patient", headers=_bearer(bad))
        assert r.status_code == 401
        assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_the_auditor_sees_the_study_clients_accesses(setup: Setup) -> None:
    c = setup.client()
    study = _bearer(setup.token("study", STUDY_SCOPE))
    assert c.get(f"/fhir/ResearchStudy/{TAG}-study", headers=study).status_code == 200
    assert c.get(f"/fhir/Patient/{TAG}-patient", headers=study).status_code == 403
    auditor = _bearer(setup.token("auditor", "system/AuditEvent.rs"))
    assert c.get(f"/fhir/ResearchStudy/{TAG}-study", headers=auditor).status_code == 403
    r = c.get(f"/fhir/AuditEvent?agent={setup.ids['study']}&_count=200", headers=auditor)
    assert r.status_code == 200, r.get_data(as_text=True)
    events = [e["resource"] for e in r.json["entry"]]
    assert all(e["agent"][0]["who"]["identifier"]["value"] == setup.ids["study"]
               for e in events)
    what = {(e.get("entity", [{}])[0].get("what", {}).get("reference"), e["outcome"])
            for e in events}
    assert (f"ResearchStudy/{TAG}-study", "0") in what
    assert (f"Patient/{TAG}-patient", "4") in what
    tokens = [e["outcomeDesc"] for e in events if e["type"]["code"] == "110114"]
    assert any("token issued" in t for t in tokens) and any("token refused" in t for t in tokens)
    for event in events[:5]:
        assert validate(event, "R4") == []
    r5 = c.get(f"/fhir/R5/AuditEvent?agent={setup.ids['study']}&_count=5", headers=auditor)
    for entry in r5.json["entry"]:
        assert validate(entry["resource"], "R5") == []
    one = c.get(f"/fhir/AuditEvent/{events[0]['id']}", headers=auditor).json
    assert one["id"] == events[0]["id"]
    refused = c.get("/fhir/AuditEvent?type=110114&outcome=4", headers=auditor).json
    assert any("token refused" in e["resource"]["outcomeDesc"] for e in refused["entry"])
    assert c.get("/fhir/AuditEvent?nonsense=1", headers=auditor).status_code == 400
    admin = _bearer(setup.token("admin", "system/*.cruds"))
    for method in ("post", "put", "delete"):
        path = "/fhir/AuditEvent" + ("" if method == "post" else f"/{events[0]['id']}")
        r = getattr(c, method)(path, json={"resourceType": "AuditEvent"}, headers=admin)
        assert r.status_code == 405, method


def test_rate_limit_answers_429_with_retry_after(setup: Setup) -> None:
    app = create_app({"DATABASE_URL": setup.database, "PUBLIC_BASE_URL": BASE,
                      "AUTH": "smart", "RATE_LIMIT": 60})  # 1/s, bursts of 10
    try:
        token = setup.token("study", STUDY_SCOPE)
        c = app.test_client()
        codes = [c.get(f"/fhir/ResearchStudy/{TAG}-study", headers=_bearer(token)).status_code
                 for _ in range(12)]
        assert codes[:10] == [200] * 10 and codes[-1] == 429
        r = c.get(f"/fhir/ResearchStudy/{TAG}-study", headers=_bearer(token))
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert r.json["issue"][0]["code"] == "throttled"
    finally:
        app.extensions["fhir_store"].close()


def test_key_rotation_and_removal(setup: Setup, tmp_path: Path) -> None:
    old, new = rsa_key(), ec_key()
    cid = register(setup.database, f"rotating-{TAG}", old.write(tmp_path), STUDY_SCOPE)
    listed = CliRunner().invoke(cli, ["clients", "list", "--database", setup.database]).stdout
    assert cid in listed and f"rotating-{TAG}" in listed
    result = CliRunner().invoke(cli, ["clients", "rotate", f"rotating-{TAG}", "--jwks",
                                      str(new.write(tmp_path)), "--database", setup.database])
    assert result.exit_code == 0, result.output
    c = setup.client()
    assert c.post("/fhir/auth/token", data=token_form(
        assertion(old, cid, TOKEN_URL), STUDY_SCOPE)).status_code != 200
    assert c.post("/fhir/auth/token", data=token_form(
        assertion(new, cid, TOKEN_URL), STUDY_SCOPE)).status_code == 200
    result = CliRunner().invoke(cli, ["clients", "remove", cid, "--database", setup.database])
    assert result.exit_code == 0
    assert c.post("/fhir/auth/token", data=token_form(
        assertion(new, cid, TOKEN_URL), STUDY_SCOPE)).json["error"] == "invalid_client"


def test_clients_add_refuses_bad_input(setup: Setup, tmp_path: Path) -> None:
    key = rsa_key()
    private = tmp_path / "private.json"
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.private))
    private.write_text(json.dumps({"keys": [jwk]}))
    for jwks, scope, says in ((key.write(tmp_path), "patient/*.read", "not a system scope"),
                              (private, STUDY_SCOPE, "private key"),
                              (tmp_path / "missing.json", STUDY_SCOPE, "cannot read")):
        result = CliRunner().invoke(cli, ["clients", "add", f"bad-{uuid.uuid4().hex[:6]}",
                                          "--jwks", str(jwks), "--scope", scope,
                                          "--database", setup.database])
        assert result.exit_code != 0 and says in result.output, result.output


def test_cors_star_is_refused_with_auth(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CORS_ORIGINS"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "AUTH": "smart",
                    "CORS_ORIGINS": "*"})


def test_auth_off_defaults_are_safe(tmp_path: Path) -> None:
    app: Flask = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    try:
        r = app.test_client().get("/fhir/metadata", headers={"Origin": "http://evil.example"})
        assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "security" not in r.json["rest"][0]
        assert app.test_client().get("/fhir/.well-known/smart-configuration"
                                     ).status_code == 404
    finally:
        app.extensions["fhir_store"].close()


def test_serve_refuses_the_network_without_auth() -> None:
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code != 0 and "--no-auth" in result.output


def test_serve_on_the_network_with_no_auth_warns_and_with_auth_does_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import werkzeug.serving

    served: list[tuple[str, Any]] = []
    monkeypatch.setattr(werkzeug.serving, "run_simple",
                        lambda host, port, app, **kw: served.append((host, app)))
    database = f"sqlite:///{tmp_path / 'serve.db'}"
    runner = CliRunner()
    loud = runner.invoke(cli, ["serve", "--host", "0.0.0.0", "--no-auth", "--port", "0",
                               "--database", database])
    assert loud.exit_code == 0, loud.output
    assert "WITHOUT authorization" in loud.stderr
    quiet = runner.invoke(cli, ["serve", "--host", "0.0.0.0", "--auth", "smart", "--port",
                                "0", "--database", database])
    assert quiet.exit_code == 0, quiet.output
    assert "WITHOUT" not in quiet.stderr
    assert [host for host, _ in served] == ["0.0.0.0", "0.0.0.0"]
    assert served[1][1].extensions.get("fhir_auth") is not None
    for _, app in served:
        app.extensions["fhir_store"].close()
