"""End to end: the real server process on loopback (`fhir-adapter serve --examples`, and
gunicorn for a second process), loaded with the seed study, its enrollments and adverse events
and the SDTM pilot slice, driven by the real clients fhirclient 4.4.0 and fhirpy 2.3.1 and by
plain HTTP for the concurrency guarantees. On SQLite, and on PostgreSQL when
FHIR_ADAPTER_TEST_POSTGRES_URL is set (there also two server processes on one database)."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import FIXTURES
from fhirclient import client as fhirclient_client
from fhirclient.models.bundle import Bundle, BundleEntry, BundleEntryRequest
from fhirclient.models.patient import Patient
from fhirclient.models.researchsubject import ResearchSubject
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound
from loopback import free_port, process, serve_command
from store_backends import new_postgres_database

from fhir_adapter import ids
from fhir_adapter.store.canonical import dumps, loads
from fhir_adapter.validation import validate

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SDTM = FIXTURES / "sdtm" / "cdiscpilot01-slice"
OFFICIAL = FIXTURES / "fhir" / "examples" / "r4"
FHIR = "application/fhir+json"
SEED = "NCT05003921"


def _rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as fh:
        return sum(1 for _ in csv.DictReader(fh))


@dataclass
class Server:
    """A running gateway: its FHIR base URL and database."""

    base: str
    database: str


@contextmanager
def running(command: Callable[[int], list[str]], env: dict[str, str], log: Path
            ) -> Iterator[str]:
    """Start a server process on a free loopback port; its FHIR base URL once it answers
    (--examples loads before listening)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    with process(command(port), log, f"{base}/metadata", cwd=log.parent,
                 env={**env, "FHIR_ADAPTER_PUBLIC_BASE_URL": base}):
        yield base


def _cli(env: dict[str, str], *args: str | Path) -> None:
    done = subprocess.run([sys.executable, "-m", "fhir_adapter", *map(str, args)], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def examples_command(database: str) -> Callable[[int], list[str]]:
    return lambda port: serve_command(port, database, "--examples")


def gunicorn_command(port: int) -> list[str]:
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    assert gunicorn, "gunicorn is a dependency of fhir-adapter"
    return [gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
            "fhir_adapter.gateway:create_app()"]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres",
                                                                marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Server]:
    """`fhir-adapter serve --examples` over a fresh database with the SDTM slice loaded."""
    folder = tmp_path_factory.mktemp(f"e2e-{request.param}")
    with ExitStack() as stack:
        database = (f"sqlite:///{folder / 'fhir.db'}" if request.param == "sqlite"
                    else stack.enter_context(new_postgres_database()))
        env = {**os.environ, "FHIR_ADAPTER_DATABASE_URL": database}
        if SDTM.is_dir():
            _cli(env, "load", "study", SDTM)
            _cli(env, "load", "enrollments", SDTM / "dm.csv", "--study", "CDISCPILOT01",
                 "--disposition", SDTM / "ds.csv")
            _cli(env, "load", "adverse-events", SDTM / "ae.csv", "--study", "CDISCPILOT01")
        base = stack.enter_context(running(examples_command(database), env,
                                           folder / "serve.log"))
        yield Server(base, database)


def _study_ref(study: str) -> str:
    return f"ResearchStudy/{ids.study_resource_id(study)}"


def _studies() -> list[tuple[str, Path, Path]]:
    out = [(SEED, EXAMPLES / f"{SEED}.enrollments.csv", EXAMPLES / f"{SEED}.adverse-events.csv")]
    if SDTM.is_dir():
        out.append(("CDISCPILOT01", SDTM / "dm.csv", SDTM / "ae.csv"))
    return out


# -- fhirclient 4.4.0 --------------------------------------------------------------------------

def _fhirclient(server: Server) -> Any:
    smart = fhirclient_client.FHIRClient(settings={"app_id": "e2e", "api_base": server.base})
    return smart.server


def test_fhirclient_capability_read_search_paging(server: Server) -> None:
    fs = _fhirclient(server)
    statement = fs.capabilityStatement  # parsed by fhirclient's strict R4 models
    assert statement.fhirVersion == "4.0.1"
    assert statement.rest[0].security is None  # no auth configured: no oauth-uris
    from fhirclient.models.researchstudy import ResearchStudy

    study = ResearchStudy.read(ids.study_resource_id(SEED), fs)
    assert any(i.value == SEED for i in study.identifier)
    for key, subjects, _ in _studies():
        found = list(ResearchSubject.where({"study": _study_ref(key), "_count": "3"})
                     .perform_resources_iter(fs))
        assert len(found) == _rows(subjects), key  # every page followed
        assert len({s.id for s in found}) == len(found)


def test_fhirclient_create_update_transaction(server: Server) -> None:
    fs = _fhirclient(server)
    system = f"urn:e2e:{uuid.uuid4().hex}"
    patient = Patient({"identifier": [{"system": system, "value": "1"}], "gender": "female"})
    created = patient.create(fs)  # fhirclient returns the body (and ignores Location)
    assert created["resourceType"] == "Patient" and created["meta"]["versionId"] == "1"
    read = Patient.read(created["id"], fs)
    read.gender = "male"
    read.update(fs)
    assert Patient.read(created["id"], fs).gender == "male"
    bundle = Bundle({"type": "transaction"})
    bundle.entry = []
    for n in range(2):
        entry = BundleEntry()
        entry.fullUrl = f"urn:uuid:{uuid.uuid4()}"
        entry.resource = Patient({"identifier": [{"system": system, "value": f"t{n}"}]})
        entry.request = BundleEntryRequest({"method": "POST", "url": "Patient"})
        bundle.entry.append(entry)
    reply = bundle.create(fs)  # POSTs to the base URL
    assert reply["type"] == "transaction-response"
    assert [e["response"]["status"] for e in reply["entry"]] == ["201 Created"] * 2
    found = list(Patient.where({"identifier": f"{system}|"}).perform_resources_iter(fs))
    assert len(found) == 3


# -- fhirpy 2.3.1 ------------------------------------------------------------------------------

def test_fhirpy_search_paging_count(server: Server) -> None:
    client = SyncFHIRClient(server.base)
    for key, subjects, events in _studies():
        search = client.resources("AdverseEvent").search(study=_study_ref(key))
        assert search.count() == _rows(events), key
        assert len(search.limit(4).fetch_all()) == _rows(events)
        people = client.resources("ResearchSubject").search(study=_study_ref(key))
        assert len(list(people.limit(5))) == _rows(subjects)
    # _revinclude through fhirpy: the study with its subjects in one Bundle
    raw = (client.resources("ResearchStudy").search(identifier=SEED)
           .revinclude("ResearchSubject", "study").fetch_raw())
    kinds = [e["resource"]["resourceType"] for e in raw["entry"]]
    assert kinds.count("ResearchStudy") == 1
    assert kinds.count("ResearchSubject") == _rows(EXAMPLES / f"{SEED}.enrollments.csv")


def test_fhirpy_create_update_refresh_delete(server: Server) -> None:
    client = SyncFHIRClient(server.base)
    system = f"urn:e2e:{uuid.uuid4().hex}"
    patient = client.resource("Patient", identifier=[{"system": system, "value": "1"}])
    patient.save()  # POST with Content-Type application/json
    assert patient.id and patient["meta"]["versionId"] == "1"
    patient["active"] = True
    patient.save()  # PUT
    assert patient["meta"]["versionId"] == "2"
    patient.refresh()  # If-None-Match: 2 -> 304
    assert patient["active"] is True
    again, created = (client.resources("Patient").search(identifier=f"{system}|1")
                      .get_or_create(client.resource("Patient", identifier=[
                          {"system": system, "value": "1"}])))
    assert not created and again.id == patient.id  # POST /Patient?identifier=... matched
    reply = client.execute("", method="post", data={
        "resourceType": "Bundle", "type": "transaction", "entry": [
            {"request": {"method": "DELETE", "url": f"Patient/{patient.id}"}}]})
    assert reply["entry"][0]["response"]["status"] == "204 No Content"
    with pytest.raises(ResourceNotFound):  # 410 Gone
        client.resources("Patient").search(_id=patient.id).get()
    with pytest.raises(ResourceNotFound):
        client.reference("Patient", patient.id).to_resource()


def test_fhirpy_patch_and_fhirclient_reads_the_result(server: Server) -> None:
    client = SyncFHIRClient(server.base)
    system = f"urn:e2e:{uuid.uuid4().hex}"
    patient = client.resource("Patient", identifier=[{"system": system, "value": "1"}],
                              gender="female")
    patient.save()
    patched = client.patch("Patient", patient.id, active=True, gender=None)  # merge patch
    assert patched["active"] is True and "gender" not in patched
    patient["birthDate"] = "1970-01-01"
    patient.save(fields=["birthDate"])  # fhirpy's partial save is a PATCH too
    found = client.resources("Patient").search(identifier=f"{system}|1")
    found.patch(gender="other")  # conditional PATCH /Patient?identifier=...
    read = Patient.read(patient.id, _fhirclient(server))
    assert (read.active, read.gender, read.birthDate.isostring) == (True, "other",
                                                                    "1970-01-01")
    assert read.meta.versionId == "4"
    # fhirclient has no patch(): its requests session sends a JSON Patch, If-Match first
    session = _fhirclient(server).session
    url = f"{server.base}/Patient/{patient.id}"
    ops = b'[{"op": "remove", "path": "/birthDate"}]'
    stale = session.patch(url, data=ops, headers={"Content-Type": "application/json-patch+json",
                                                  "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    done = session.patch(url, data=ops, headers={"Content-Type": "application/json-patch+json",
                                                 "If-Match": 'W/"4"'})
    assert done.status_code == 200, done.text
    assert Patient.read(patient.id, _fhirclient(server)).birthDate is None


# -- plain HTTP: versions, byte fidelity and the concurrency guarantees -----------------------

def test_mapped_study_reads_in_both_versions(server: Server) -> None:
    url = f"ResearchStudy/{ids.study_resource_id(SEED)}"
    r4 = requests.get(f"{server.base}/{url}")
    r5 = requests.get(f"{server.base}/{url}",
                      headers={"Accept": "application/fhir+json; fhirVersion=5.0"})
    alias = requests.get(f"{server.base}/R5/{url}")
    assert r4.status_code == r5.status_code == alias.status_code == 200
    assert r5.content == alias.content != r4.content
    assert validate(r4.json(), "R4") == [] and validate(r5.json(), "R5") == []
    assert "fhirVersion=5.0" in r5.headers["Content-Type"]



@pytest.mark.parametrize("name", ["ResearchStudy-example.json", "ResearchSubject-example.json",
                                  "AdverseEvent-example.json"])
def test_official_examples_posted_read_back_unchanged(server: Server, name: str) -> None:
    if not (OFFICIAL / name).exists():
        pytest.skip(f"{OFFICIAL / name} not present")
    example = loads((OFFICIAL / name).read_bytes())
    sent = dumps(example)
    r = requests.post(f"{server.base}/{example['resourceType']}", data=sent,
                      headers={"Content-Type": FHIR})
    assert r.status_code == 201, r.text
    back = loads(requests.get(r.headers["Location"].rsplit("/_history/", 1)[0]).content)
    assert back.pop("meta")["versionId"] == "1"
    back.pop("id")
    expected = {k: v for k, v in example.items() if k not in ("id", "meta")}
    assert dumps(back) == dumps(expected)  # same bytes: order, decimals, instants


def _together(n: int, action: Callable[[int], Any]) -> list[Any]:
    """Run `action(i)` in n threads released at the same moment."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        results[i] = action(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def _conditional_creates(bases: list[str]) -> None:
    system = f"urn:e2e:{uuid.uuid4().hex}"
    body = dumps({"resourceType": "Patient", "identifier": [{"system": system, "value": "x"}]})
    replies = _together(8, lambda i: requests.post(
        f"{bases[i % len(bases)]}/Patient", data=body,
        headers={"Content-Type": FHIR, "If-None-Exist": f"identifier={system}|x"}, timeout=120))
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200] * 7 + [201], [r.text for r in replies]
    assert len({r.json()["id"] for r in replies}) == 1
    total = requests.get(f"{bases[-1]}/Patient?identifier={system}|x&_summary=count").json()
    assert total["total"] == 1


def _if_match_race(bases: list[str]) -> None:
    made = requests.post(f"{bases[0]}/Patient", data=dumps({"resourceType": "Patient"}),
                         headers={"Content-Type": FHIR}).json()
    replies = _together(2, lambda i: requests.put(
        f"{bases[i % len(bases)]}/Patient/{made['id']}",
        data=dumps(made | {"gender": ["male", "female"][i]}),
        headers={"Content-Type": FHIR, "If-Match": 'W/"1"'}, timeout=120))
    assert sorted(r.status_code for r in replies) == [200, 412]
    final = requests.get(f"{bases[-1]}/Patient/{made['id']}").json()
    assert final["meta"]["versionId"] == "2"


def test_eight_simultaneous_conditional_creates_make_one(server: Server) -> None:
    _conditional_creates([server.base])


def test_two_updates_with_one_if_match_give_200_and_412(server: Server) -> None:
    _if_match_race([server.base])


def test_transaction_with_one_invalid_entry_writes_nothing(server: Server) -> None:
    system = f"urn:e2e:{uuid.uuid4().hex}"
    entries = [{"fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {"resourceType": "Patient",
                             "identifier": [{"system": system, "value": str(n)}]},
                "request": {"method": "POST", "url": "Patient"}} for n in range(3)]
    entries.append({"resource": {"resourceType": "Patient", "gender": "unknown-gender",
                                 "identifier": [{"system": system, "value": "bad"}]},
                    "request": {"method": "POST", "url": "Patient"}})
    r = requests.post(server.base, data=dumps({"resourceType": "Bundle", "type": "transaction",
                                               "entry": entries}),
                      headers={"Content-Type": FHIR})
    assert r.status_code == 422
    assert any(e.startswith("Bundle.entry[3]") for i in r.json()["issue"]
               for e in i.get("expression", []))
    total = requests.get(f"{server.base}/Patient?identifier={system}|&_summary=count").json()
    assert total["total"] == 0


@pytest.mark.parametrize("release", ["R4", "R5"])
def test_bulk_export_of_the_seed_study(server: Server, release: str) -> None:
    """A Bulk Data client's round: kick-off, poll, download, delete (requests, as the
    bulk-data client libraries drive it)."""
    base = server.base + ("/R5" if release == "R5" else "")
    kick = requests.get(f"{base}/ResearchStudy/{ids.study_resource_id(SEED)}/$export",
                        headers={"Accept": FHIR, "Prefer": "respond-async"})
    assert kick.status_code == 202, kick.text
    status = kick.headers["Content-Location"]
    deadline = time.monotonic() + 60
    while (reply := requests.get(status, headers={"Accept": "application/json"})
           ).status_code == 202:
        assert time.monotonic() < deadline
        time.sleep(float(reply.headers["Retry-After"]) / 10)
    assert reply.status_code == 200, reply.text
    output = {o["type"]: o for o in reply.json()["output"]}
    assert {"ResearchStudy", "ResearchSubject", "Patient", "AdverseEvent", "Organization",
            "Location"} <= set(output)
    for rtype, entry in output.items():
        got = requests.get(entry["url"], headers={"Accept": "application/fhir+ndjson"})
        assert got.headers["Content-Type"].startswith("application/fhir+ndjson")
        lines = got.content.splitlines()
        assert len(lines) == entry["count"] > 0
        for line in lines:
            resource = loads(line)
            assert resource["resourceType"] == rtype
            assert validate(resource, release) == []
    subjects = [loads(x) for x in requests.get(output["ResearchSubject"]["url"]
                                               ).content.splitlines()]
    assert len(subjects) == _rows(EXAMPLES / f"{SEED}.enrollments.csv")
    assert output["AdverseEvent"]["count"] == _rows(EXAMPLES / f"{SEED}.adverse-events.csv")
    assert requests.delete(status).status_code == 202
    assert requests.get(status).status_code == 404


def test_serve_examples_is_idempotent(server: Server, tmp_path: Path) -> None:
    before = requests.get(f"{server.base}/ResearchStudy/{ids.study_resource_id(SEED)}").json()
    env = {**os.environ, "FHIR_ADAPTER_DATABASE_URL": server.database}
    with running(examples_command(server.database), env, tmp_path / "again.log") as base:
        after = requests.get(f"{base}/ResearchStudy/{ids.study_resource_id(SEED)}").json()
    assert "0 created, 0 updated" in (tmp_path / "again.log").read_text()
    assert after["meta"] == before["meta"]  # loading the seed again changed nothing


def test_gunicorn_preload_workers_each_have_their_own_connections(server: Server,
                                                                  tmp_path: Path) -> None:
    """--preload: the master opens the store, then forks the workers; none may use another's
    (or the master's) database connection."""
    def preload_command(port: int) -> list[str]:
        return [*gunicorn_command(port)[:-1], "--preload", "fhir_adapter.gateway:create_app()"]

    env = {**os.environ, "FHIR_ADAPTER_DATABASE_URL": server.database}
    study = ids.study_resource_id(SEED)

    def work(_: int) -> list[int]:
        codes = []
        for _ in range(10):
            codes.append(requests.get(f"{base}/ResearchStudy/{study}").status_code)
            codes.append(requests.get(f"{base}/AdverseEvent",
                                      params={"study": f"ResearchStudy/{study}"}).status_code)
            codes.append(requests.post(f"{base}/Patient", data=dumps(
                {"resourceType": "Patient", "gender": "other"}),
                headers={"Content-Type": FHIR}).status_code)
        return codes

    with running(preload_command, env, tmp_path / "preload.log") as base:
        with ThreadPoolExecutor(8) as pool:
            codes = Counter(code for codes in pool.map(work, range(8)) for code in codes)
    assert codes == {200: 160, 201: 80}, (codes, (tmp_path / "preload.log").read_text()[-3000:])


@pytest.mark.postgres
def test_two_server_processes_on_one_postgresql_stay_consistent(server: Server,
                                                                tmp_path: Path) -> None:
    if not server.database.startswith("postgresql"):
        pytest.skip("two processes share a PostgreSQL database (SQLite is one machine's file)")
    env = {**os.environ, "FHIR_ADAPTER_DATABASE_URL": server.database}
    with running(gunicorn_command, env, tmp_path / "gunicorn.log") as second:
        bases = [server.base, second]
        _conditional_creates(bases)
        _if_match_race(bases)
        made = requests.post(f"{second}/Patient", data=dumps({"resourceType": "Patient"}),
                             headers={"Content-Type": FHIR}).json()
        seen = requests.get(f"{server.base}/Patient/{made['id']}")
        assert seen.status_code == 200 and seen.json()["meta"] == made["meta"]
        requests.delete(f"{server.base}/Patient/{made['id']}")
        assert requests.get(f"{second}/Patient/{made['id']}").status_code == 410


def test_our_extensions_resolve_to_served_structure_definitions(server: Server) -> None:
    """A client meeting one of our extensions on a served resource finds its definition on the
    same server (StructureDefinition?url=) and the extension fits it: context and value type."""
    checked = set()
    for rtype in ("Patient", "ResearchSubject", "AdverseEvent"):
        bundle = requests.get(f"{server.base}/{rtype}", params={"_count": "50"}).json()
        for entry in bundle.get("entry", []):
            resource = entry["resource"]
            for ext in resource.get("extension", []):
                if not ext["url"].startswith("https://fhir-adapter.dev/"):
                    continue
                found = requests.get(f"{server.base}/StructureDefinition",
                                     params={"url": ext["url"]}).json()
                (sd,) = [e["resource"] for e in found["entry"]]
                assert rtype in [c["expression"] for c in sd["context"]]
                elements = {e["id"]: e for e in sd["differential"]["element"]}
                value = [k.removeprefix("value") for k in ext if k.startswith("value")]
                allowed = [t["code"] for t in elements["Extension.value[x]"].get("type", [])]
                if allowed:
                    assert value and value[0] in allowed, (ext, allowed)
                else:  # complex: each part is a slice of the definition
                    for part in ext["extension"]:
                        slice_ = elements[f"Extension.extension:{part['url']}.value[x]"]
                        assert any(k == "value" + t["code"] for k in part
                                   for t in slice_["type"])
                checked.add(ext["url"].rsplit("/", 1)[1])
    if SDTM.is_dir():
        assert {"age-at-enrollment", "study-site", "meddra-classification"} <= checked
