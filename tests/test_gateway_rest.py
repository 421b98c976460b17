"""FHIR REST interactions on one resource (R4 http.html) through the Flask test client over the
real store: create, read, vread, update, delete, history, conditional forms, Prefer, ETags."""

from __future__ import annotations

import pytest
from gateway_fixtures import BASE, FHIR, app, client, database_url, patient, post, unique_system
from gateway_fixtures import official as official_example

from fhir_adapter.gateway import create_app
from fhir_adapter.store.canonical import dumps, loads

__all__ = ["app", "client", "database_url"]  # fixtures used by name


def _body(response) -> dict:  # type: ignore[no-untyped-def]
    return loads(response.data)


def test_create_assigns_id_and_answers_201_with_location_etag(client) -> None:
    system = unique_system()
    sent = patient(system) | {"id": "client-chosen"}
    r = post(client, sent)
    assert r.status_code == 201
    body = _body(r)
    assert body["id"] != "client-chosen"  # the server assigns ids on create (R4)
    assert body["meta"]["versionId"] == "1"
    assert r.headers["ETag"] == 'W/"1"'
    assert r.headers["Location"] == f"{BASE}/Patient/{body['id']}/_history/1"
    assert r.headers["Last-Modified"].endswith("GMT")
    assert r.headers["Content-Type"].startswith(FHIR)


def test_read_serves_exact_bytes_with_decimals_instants_order_extensions(client) -> None:
    raw = (b'{"resourceType":"Patient","extension":[{"url":"http://example.org/w",'
           b'"valueDecimal":72.50}],"identifier":[{"system":"' + unique_system().encode()
           + b'","value":"x"}],"birthDate":"1970-01-01","deceasedDateTime":'
           b'"2020-01-01T10:00:00Z"}')
    r = client.post("/fhir/Patient", data=raw, headers={"Content-Type": FHIR})
    assert r.status_code == 201, r.data
    rid = _body(r)["id"]
    read = client.get(f"/fhir/Patient/{rid}")
    assert read.status_code == 200
    assert b'"valueDecimal":72.50' in read.data
    assert b'"2020-01-01T10:00:00Z"' in read.data
    got = _body(read)
    assert list(got) == ["resourceType", "id", "meta", "extension", "identifier", "birthDate",
                         "deceasedDateTime"]


@pytest.mark.parametrize("name", ["r4/ResearchStudy-example.json",
                                  "r4/ResearchSubject-example.json",
                                  "r4/AdverseEvent-example.json"])
def test_official_r4_examples_read_back_unchanged(client, name) -> None:
    example = official_example(name)
    r = client.put(f"/fhir/{example['resourceType']}/{example['id']}", data=dumps(example),
                   headers={"Content-Type": FHIR})
    assert r.status_code in (200, 201), r.data
    back = _body(client.get(f"/fhir/{example['resourceType']}/{example['id']}"))
    back.pop("meta")
    assert dumps(back) == dumps({k: v for k, v in example.items() if k != "meta"})


def test_if_none_match_gives_304_also_for_a_bare_version(client) -> None:
    rid = _body(post(client, patient(unique_system())))["id"]
    for tag in ('W/"1"', '"1"', "1"):
        r = client.get(f"/fhir/Patient/{rid}", headers={"If-None-Match": tag})
        assert r.status_code == 304
        assert r.data == b""
    assert client.get(f"/fhir/Patient/{rid}", headers={"If-None-Match": 'W/"2"'}).status_code \
        == 200


def test_update_if_match_and_vread_and_history(client) -> None:
    system = unique_system()
    created = _body(post(client, patient(system)))
    rid = created["id"]
    changed = created | {"active": True}
    ok = client.put(f"/fhir/Patient/{rid}", json=changed,
                    headers={"Content-Type": FHIR, "If-Match": 'W/"1"'})
    assert ok.status_code == 200 and ok.headers["ETag"] == 'W/"2"'
    stale = client.put(f"/fhir/Patient/{rid}", json=changed | {"active": False},
                       headers={"Content-Type": FHIR, "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert _body(stale)["resourceType"] == "OperationOutcome"
    v1 = _body(client.get(f"/fhir/Patient/{rid}/_history/1"))
    assert "active" not in v1 and v1["meta"]["versionId"] == "1"
    assert client.get(f"/fhir/Patient/{rid}/_history/9").status_code == 404
    history = _body(client.get(f"/fhir/Patient/{rid}/_history"))
    assert history["type"] == "history"
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]
    assert [e["request"]["method"] for e in history["entry"]] == ["PUT", "POST"]


def test_update_of_unchanged_content_keeps_the_version(client) -> None:
    created = _body(post(client, patient(unique_system())))
    again = client.put(f"/fhir/Patient/{created['id']}", json=created,
                       headers={"Content-Type": FHIR})
    assert again.status_code == 200
    assert again.headers["ETag"] == 'W/"1"'


def test_update_creates_with_client_id_and_checks_the_id(client) -> None:
    rid = unique_system().rsplit(":", 1)[1][:30]
    r = client.put(f"/fhir/Patient/{rid}", json=patient(unique_system()) | {"id": rid},
                   headers={"Content-Type": FHIR})
    assert r.status_code == 201
    assert r.headers["Location"] == f"{BASE}/Patient/{rid}/_history/1"
    wrong = client.put(f"/fhir/Patient/{rid}", json=patient("urn:x") | {"id": "other"},
                       headers={"Content-Type": FHIR})
    assert wrong.status_code == 400


def test_delete_then_410_and_history_records_it(client) -> None:
    rid = _body(post(client, patient(unique_system())))["id"]
    gone = client.delete(f"/fhir/Patient/{rid}")
    assert gone.status_code == 200
    assert _body(gone)["resourceType"] == "OperationOutcome"
    r = client.get(f"/fhir/Patient/{rid}")
    assert r.status_code == 410
    assert _body(r)["issue"][0]["code"] == "deleted"
    assert client.delete(f"/fhir/Patient/{rid}").status_code == 200  # idempotent
    history = _body(client.get(f"/fhir/Patient/{rid}/_history"))
    assert history["entry"][0]["request"]["method"] == "DELETE"
    assert "resource" not in history["entry"][0]


def test_prefer_return(client) -> None:
    system = unique_system()
    minimal = post(client, patient(system), Prefer="return=minimal")
    assert minimal.status_code == 201 and minimal.data == b""
    assert minimal.headers["Location"]
    oo = post(client, patient(system, "2"), Prefer="return=OperationOutcome")
    assert _body(oo)["resourceType"] == "OperationOutcome"


def test_conditional_create_0_1_many(client) -> None:
    system = unique_system()
    criteria = f"identifier={system}|a"
    first = post(client, patient(system, "a"), **{"If-None-Exist": criteria})
    assert first.status_code == 201
    second = post(client, patient(system, "a"), **{"If-None-Exist": criteria})
    assert second.status_code == 200
    assert _body(second)["id"] == _body(first)["id"]
    post(client, patient(system, "b"))
    many = post(client, patient(system, "c"), **{"If-None-Exist": f"identifier={system}|"})
    assert many.status_code == 412


def test_fhirpy_style_conditional_create_via_query_string(client) -> None:
    system = unique_system()
    url = f"/fhir/Patient?identifier={system}|q"
    json_type = {"Content-Type": "application/json"}  # what fhirpy sends
    first = client.post(url, json=patient(system, "q"), headers=json_type)
    again = client.post(url, json=patient(system, "q"), headers=json_type)
    assert (first.status_code, again.status_code) == (201, 200)


def test_conditional_update_and_delete(client) -> None:
    system = unique_system()
    url = f"/fhir/Patient?identifier={system}|u"
    made = client.put(url, json=patient(system, "u"), headers={"Content-Type": FHIR})
    assert made.status_code == 201
    rid = _body(made)["id"]
    changed = client.put(url, json=patient(system, "u", active=True),
                         headers={"Content-Type": FHIR})
    assert changed.status_code == 200 and _body(changed)["id"] == rid
    assert client.delete(url).status_code == 200
    assert client.get(f"/fhir/Patient/{rid}").status_code == 410


def test_validation_errors_are_422_with_expression_paths(client) -> None:
    bad = patient(unique_system()) | {"gender": "robot", "birthDate": "yesterday"}
    r = post(client, bad)
    assert r.status_code == 422
    outcome = _body(r)
    expressions = {e for issue in outcome["issue"] for e in issue.get("expression", [])}
    assert "Patient.gender" in expressions and "Patient.birthDate" in expressions


def test_wrong_type_in_body_is_400(client) -> None:
    r = client.post("/fhir/Organization", json=patient("urn:x"), headers={"Content-Type": FHIR})
    assert r.status_code == 400


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/fhir/Observation/1", 404),
    ("GET", "/fhir/Patient/does-not-exist", 404),
    ("GET", "/nowhere", 404),
    ("POST", "/fhir/ConceptMap", 405),
    ("PATCH", "/fhir/Patient/1", 405),
])
def test_errors_are_operation_outcomes(client, method, path, status) -> None:
    r = client.open(path, method=method, json={"resourceType": "ConceptMap"})
    assert r.status_code == status
    assert r.headers["Content-Type"].startswith(FHIR)
    assert _body(r)["resourceType"] == "OperationOutcome"


def test_413_when_the_body_is_too_large(app) -> None:
    limited = app.config["MAX_CONTENT_LENGTH"]
    app.config["MAX_CONTENT_LENGTH"] = 100
    try:
        r = app.test_client().post("/fhir/Patient", data=b"{" + b" " * 200 + b"}",
                                   headers={"Content-Type": FHIR})
    finally:
        app.config["MAX_CONTENT_LENGTH"] = limited
    assert r.status_code == 413
    assert _body(r)["issue"][0]["code"] == "too-costly"


def test_unexpected_errors_are_500_without_internals(app, caplog) -> None:
    store = app.extensions["fhir_store"]

    class Broken:
        def __getattr__(self, name):  # type: ignore[no-untyped-def]
            def fail(*args, **kwargs):  # type: ignore[no-untyped-def]
                raise RuntimeError("secret connection string postgres://u:pw@db")
            return fail

    app.extensions["fhir_store"] = Broken()
    try:
        r = app.test_client().get("/fhir/Patient/x")
    finally:
        app.extensions["fhir_store"] = store
    assert r.status_code == 500
    assert b"secret" not in r.data and b"Traceback" not in r.data
    assert _body(r)["issue"][0]["code"] == "exception"
    assert "secret connection string" in caplog.text  # the log has the traceback


def test_access_log_has_no_bodies_and_no_query_strings(client, caplog) -> None:
    secret = "MRN-4711-Doe"
    with caplog.at_level("INFO", logger="fhir_adapter.gateway"):
        post(client, patient(f"urn:test:{secret}", secret))
        client.get(f"/fhir/Patient?identifier={secret}")
        client.post("/fhir/Patient", data=b'{"resourceType":"Patient","gender":"' +
                    secret.encode() + b'"}', headers={"Content-Type": FHIR})
    assert "GET /fhir/Patient 200" in caplog.text
    assert secret not in caplog.text


def test_cors_is_off_unless_origins_are_configured(client) -> None:
    r = client.get("/fhir/metadata", headers={"Origin": "https://app.example"})
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers
    pre = client.options("/fhir/Patient", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "DELETE"})
    assert "Access-Control-Allow-Methods" not in pre.headers


def test_cors_headers_and_preflight(database_url: str) -> None:
    app = create_app({"DATABASE_URL": database_url, "CORS_ORIGINS": "*"})
    client = app.test_client()
    r = client.get("/fhir/metadata", headers={"Origin": "https://app.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "Location" in r.headers["Access-Control-Expose-Headers"]
    assert "ETag" in r.headers["Access-Control-Expose-Headers"]
    pre = client.options("/fhir/Patient", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, if-none-exist"})
    assert pre.status_code == 200
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert "if-none-exist" in pre.headers["Access-Control-Allow-Headers"]
    app.extensions["fhir_store"].close()
