"""`fhir-adapter push` over real HTTP: the seed study pushed to a second `fhir-adapter serve`
(twice: nothing new the second time), through a proxy injecting 429/503/slow answers and
dropped connections, resumed after an interruption, with SMART Backend Services auth, and in
EHR mode against the hospital's own Patients."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from remote_servers import proxy, serve

from fhir_adapter.pipeline.load import load_files
from fhir_adapter.store import open_store
from fhir_adapter.store.scope import reference_texts, targets

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SEED = "NCT05003921"
FHIR = "application/fhir+json"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite store holding the seed study, its enrollments and adverse events."""
    url = f"sqlite:///{tmp_path_factory.mktemp('push-source') / 'source.db'}"
    load_files("study", [EXAMPLES / f"{SEED}.json"], database=url)
    load_files("enrollments", [EXAMPLES / f"{SEED}.enrollments.csv"], database=url,
               study=SEED)
    load_files("adverse-events", [EXAMPLES / f"{SEED}.adverse-events.csv"], database=url,
               study=SEED)
    return url


@pytest.fixture
def target(tmp_path: Path) -> Iterator[str]:
    """A second, empty `fhir-adapter serve`."""
    with serve(f"sqlite:///{tmp_path / 'target.db'}", tmp_path / "target.log") as base:
        yield base


def push(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fhir_adapter", "push", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=600,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def totals(stdout: str) -> dict[str, int]:
    line = next(x.removeprefix("would be: ") for x in stdout.splitlines()
                if x.removeprefix("would be: ").startswith("total: "))
    return {word: int(n) for n, word in (p.split() for p in line[7:].split(", "))}


def stored(url: str, version: str = "R4") -> dict[tuple[str, str], dict[str, Any]]:
    store = open_store(url)
    try:
        return {(s.resource_type, s.id): json.loads(s.json(version))  # type: ignore[arg-type]
                for s in store.iter_all(version=version)}  # type: ignore[arg-type]
    finally:
        store.close()


def assert_same_everything_v1(source_url: str, base: str,
                              skip: frozenset[str] = frozenset()) -> None:
    """The target holds exactly the source's resources (less `skip` types), each at
    version 1, with the same content, and every reference among them resolves there."""
    ours = {k: v for k, v in stored(source_url).items() if k[0] not in skip}
    for rtype in {t for t, _ in ours} | {"Patient"}:
        bundle = requests.get(f"{base}/{rtype}", params={"_count": 1000, "_total": "accurate"},
                              headers={"Accept": FHIR}, timeout=30).json()
        theirs = {e["resource"]["id"]: e["resource"] for e in bundle.get("entry") or []}
        expected = {i for t, i in ours if t == rtype}
        if rtype not in skip:
            assert set(theirs) == expected, rtype
            assert bundle["total"] == len(expected)
        for rid, resource in theirs.items():
            if rtype in skip:
                continue
            assert resource["meta"]["versionId"] == "1", (rtype, rid)
            mine = dict(ours[rtype, rid])
            mine.pop("meta", None)
            assert {k: v for k, v in resource.items() if k != "meta"} == mine
    refs = set()
    for resource in ours.values():
        refs |= targets(set(reference_texts(json.dumps(resource, separators=(",", ":"))
                                            .encode())))
    assert refs, "the seed study has references"
    for rtype, rid in refs:
        got = requests.get(f"{base}/{rtype}/{rid}", headers={"Accept": FHIR}, timeout=30)
        assert got.status_code == 200, f"{rtype}/{rid} does not resolve on the target"


def test_push_twice_leaves_one_copy_at_version_1(source: str, target: str,
                                                 tmp_path: Path) -> None:
    first = push(target, "--database", source, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "referencing each other" not in first.stderr  # an order exists, and is kept
    count = len(stored(source))
    assert totals(first.stdout) == {"created": count, "updated": 0, "unchanged": 0,
                                    "failed": 0}
    assert not list(tmp_path.glob(".fhir-adapter-push-*")), "a clean push leaves no journal"
    second = push(target, "--database", source, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert totals(second.stdout) == {"created": 0, "updated": 0, "unchanged": count,
                                     "failed": 0}
    assert_same_everything_v1(source, target)


def test_dry_run_writes_nothing(source: str, target: str, tmp_path: Path) -> None:
    done = push(target, "--database", source, "--dry-run", "--study", SEED, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert totals(done.stdout)["created"] > 0
    assert all(line.startswith("would be: ") for line in done.stdout.splitlines())
    bundle = requests.get(f"{target}/ResearchStudy", params={"_summary": "count"},
                          headers={"Accept": FHIR}, timeout=30).json()
    assert bundle["total"] == 0


def every_third(number: int, method: str, path: str) -> str | None:
    """A fault on every third request, cycling through every kind of fault."""
    kinds = ("429", "503", "slow", "drop-before", "drop-after")
    return kinds[(number // 3) % len(kinds)] if number % 3 == 0 else None


def test_push_through_faults_completes_with_the_same_result(source: str, target: str,
                                                            tmp_path: Path) -> None:
    with proxy(target, every_third, slow=1.5) as faulty:
        done = push(f"{faulty.base}/fhir", "--database", source, "--timeout", "1",
                    "--chunk", "5", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert totals(done.stdout)["created"] == len(stored(source))
        injected = faulty.fault_counts()
        assert all(injected[k] >= 1 for k in injected), injected
        again = push(f"{faulty.base}/fhir", "--database", source, "--timeout", "1",
                     cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert totals(again.stdout)["unchanged"] == len(stored(source))
    assert_same_everything_v1(source, target)


@pytest.mark.parametrize("offers,sent", [({"transaction", "batch"}, {"transaction"}),
                                         ({"batch"}, {"batch"}), (set(), set())])
def test_transaction_else_batch_else_one_put_each(source: str, target: str, tmp_path: Path,
                                                  offers: set[str], sent: set[str]) -> None:
    with proxy(target, offers=offers) as limited:
        done = push(f"{limited.base}/fhir", "--database", source, "--chunk", "10",
                    cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert set(limited.bundles) == sent
        # Written in an order where each reference resolves when it arrives (a transaction
        # resolves within itself; a batch or a single PUT only against what came before).
        ours = set(stored(source))
        arrived: set[tuple[str, str]] = set()
        for write in limited.written:
            now = {(r["resourceType"], r["id"]) for r in write}
            for resource in write:
                refs = targets(set(reference_texts(json.dumps(resource, separators=(",", ":"))
                                                   .encode()))) & ours
                assert refs <= arrived | (now if sent == {"transaction"} else set()), refs
            arrived |= now
        if not sent:  # neither: one PUT per resource
            assert sum(1 for method, *_ in limited.log if method == "PUT") == len(
                stored(source))
    assert_same_everything_v1(source, target)


def test_a_refused_transaction_is_written_entry_by_entry(source: str, target: str,
                                                         tmp_path: Path) -> None:
    def refuse_bundles(number: int, method: str, path: str) -> str | None:
        return "reject" if method == "POST" else None

    with proxy(target, refuse_bundles) as refusing:
        done = push(f"{refusing.base}/fhir", "--database", source, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert totals(done.stdout)["created"] == len(stored(source))
    assert_same_everything_v1(source, target)


def test_an_interrupted_push_resumes(source: str, target: str, tmp_path: Path) -> None:
    writes = Counter[str]()

    def down_after_two_writes(number: int, method: str, path: str) -> str | None:
        if method == "POST":
            writes["POST"] += 1
            return "503" if writes["POST"] > 2 else None
        return None

    count = len(stored(source))
    with proxy(target, down_after_two_writes) as failing:
        stopped = push(f"{failing.base}/fhir", "--database", source, "--retries", "1",
                       "--chunk", "5", cwd=tmp_path)
        assert stopped.returncode == 1
        assert "push stopped" in stopped.stderr and "rerun to resume" in stopped.stderr
        journal = list(tmp_path.glob(".fhir-adapter-push-*.journal"))
        assert len(journal) == 1
        chunks = [json.loads(line) for line in journal[0].read_text().splitlines()[1:]]
        written = sum(len(c["done"]) for c in chunks)
        # what the target answered before it went down (single resources go as PUTs)
        assert chunks and 0 < written < count
        writes["POST"] = -10_000  # the target is back
        second = push(f"{failing.base}/fhir", "--database", source, "--chunk", "5",
                      cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "resumed from the checkpoint" in second.stderr
    assert totals(second.stdout) == {"created": count, "updated": 0, "unchanged": 0,
                                     "failed": 0}
    assert not list(tmp_path.glob(".fhir-adapter-push-*"))
    assert_same_everything_v1(source, target)


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_push_with_smart_backend_services(source: str, target: str, tmp_path: Path,
                                          kind: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "rsa"
           else ec.generate_private_key(ec.SECP384R1()))
    pem = tmp_path / "client.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    with proxy(target, smart_key=key.public_key()) as gate:
        refused = push(f"{gate.base}/fhir", "--database", source, "--retries", "0",
                       cwd=tmp_path)
        assert refused.returncode == 1 and "401" in refused.stderr
        done = push(f"{gate.base}/fhir", "--database", source, "--study", SEED, "--auth",
                    "smart", "--client-id", "push-client", "--key", pem, "--scope",
                    "system/*.write", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert totals(done.stdout)["created"] > 0
        assert gate.assertions and gate.assertions[0]["scope"] == "system/*.write"
        assert gate.assertions[0]["aud"] == f"{gate.base}/auth/token"
        bearer = push(f"{gate.base}/fhir", "--database", source, "--study", SEED,
                      "--bearer", next(iter(gate.tokens)), cwd=tmp_path)
        assert bearer.returncode == 0, bearer.stderr
        assert totals(bearer.stdout)["created"] == 0
        wrong = tmp_path / "wrong.pem"
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        wrong.write_bytes(other.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        bad = push(f"{gate.base}/fhir", "--database", source, "--auth", "smart",
                   "--client-id", "push-client", "--key", wrong, cwd=tmp_path)
        assert bad.returncode == 1 and "SMART token request refused" in bad.stderr


def test_ehr_mode_links_the_hospital_patients(source: str, target: str,
                                              tmp_path: Path) -> None:
    subjects = {json.loads(json.dumps(r))["identifier"][0]["value"]: rid
                for (t, rid), r in stored(source).items() if t == "Patient"}
    crosswalk = tmp_path / "crosswalk.csv"
    hospital: dict[str, str] = {}
    with crosswalk.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["subject_id", "system", "value"])
        for number, subject in enumerate(sorted(subjects), start=1):
            mrn = f"MRN-{number:04d}"
            out.writerow([subject, "urn:oid:1.2.3.4.5", mrn])
            made = requests.post(f"{target}/Patient", json={
                "resourceType": "Patient", "identifier": [
                    {"system": "urn:oid:1.2.3.4.5", "value": mrn}],
                "name": [{"family": f"Hospital{number}"}]},
                headers={"Content-Type": FHIR, "Accept": FHIR}, timeout=30)
            assert made.status_code == 201
            hospital[subjects[subject]] = made.json()["id"]
    done = push(target, "--database", source, "--study", SEED, "--link-patients", crosswalk,
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Patient(s) not pushed" in done.stderr
    patients = requests.get(f"{target}/Patient", params={"_count": 100},
                            headers={"Accept": FHIR}, timeout=30).json()
    assert {e["resource"]["id"] for e in patients["entry"]} == set(hospital.values())
    for rtype, field in (("ResearchSubject", "individual"), ("AdverseEvent", "subject")):
        found = requests.get(f"{target}/{rtype}", params={"_count": 100},
                             headers={"Accept": FHIR}, timeout=30).json()["entry"]
        assert found
        for entry in found:
            ref = entry["resource"][field]["reference"]
            assert ref.removeprefix("Patient/") in hospital.values(), ref
    again = push(target, "--database", source, "--study", SEED, "--link-patients", crosswalk,
                 cwd=tmp_path)
    assert again.returncode == 0 and totals(again.stdout)["created"] == 0
    partial = tmp_path / "partial.csv"
    partial.write_text("\n".join(crosswalk.read_text().splitlines()[:-1]) + "\n")
    missing = push(target, "--database", source, "--study", SEED, "--link-patients", partial,
                   cwd=tmp_path)
    assert missing.returncode == 1
    assert "is not in the --link-patients crosswalk" in missing.stderr
