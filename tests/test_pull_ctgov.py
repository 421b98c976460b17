"""`fhir-adapter pull ctgov` against a loopback replay of the ClinicalTrials.gov API v2 built
from the public fixture records: every page followed (429 and 503 on the way), every record
mapped and stored, filters sent as the API takes them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import fixture_path
from ctgov_replay import fixture_studies, replay_api

from fhir_adapter import ids
from fhir_adapter.store import open_store


@pytest.fixture(scope="module")
def studies() -> list[dict[str, Any]]:
    return fixture_studies(fixture_path("ctgov", "v2"))


def pull(api: str, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FHIR_ADAPTER_CTGOV_API": api, "FHIR_ADAPTER_CTGOV_RATE": "6000"}
    return subprocess.run([sys.executable, "-m", "fhir_adapter", "pull", "ctgov",
                           *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)


def nct(study: dict[str, Any]) -> str:
    return study["protocolSection"]["identificationModule"]["nctId"]


def test_pull_load_maps_every_record_it_pages_through(studies: list[dict[str, Any]],
                                                      tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'mirror.db'}"
    with replay_api(studies, faults={1: 429, 3: 503}) as api:
        done = pull(api.api, "--query", "a", "--page-size", "4", "--load", "--database",
                    database, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    tokens = {r["pageToken"] for r in api.requests if "pageToken" in r}
    expected = [s for s in studies if "a" in json.dumps(s).lower()]
    assert len(expected) > 8  # several pages of 4
    assert len(tokens) == (len(expected) - 1) // 4  # every next page
    assert len(api.requests) == len(tokens) + 1 + 2  # the first page, the 429 and the 503
    assert all(r["pageSize"] == "4" and r["query.term"] == "a" for r in api.requests)
    assert f"{len(expected)} study record(s) of {len(expected)} the API counted" in done.stderr
    assert f"{len(expected)} stud(ies) mapped and stored" in done.stdout
    store = open_store(database)
    try:
        for study in expected:
            stored = store.read("ResearchStudy", ids.study_resource_id(nct(study)))
            assert {"R4", "R5"} <= set(stored.body)
            assert nct(study).encode() in stored.json("R4")
    finally:
        store.close()
    again = pull(api.api, "--query", "a", "--page-size", "4", "--load", "--database",
                 database, "--retries", "1", cwd=tmp_path)
    assert again.returncode != 0  # the replay server is gone: a clear error, no traceback
    assert "pull stopped" in again.stderr and "Traceback" not in again.stderr


def test_pull_output_filters_and_the_file_maps(studies: list[dict[str, Any]],
                                               tmp_path: Path) -> None:
    out = tmp_path / "updated.json"
    with replay_api(studies, faults={2: 503}) as api:
        done = pull(api.api, "--query", "cancer", "--status", "completed", "--since",
                    "2020-01-01", "--page-size", "2", "--output", out, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    first = api.requests[0]
    assert first["filter.overallStatus"] == "COMPLETED"
    assert first["filter.advanced"] == "AREA[LastUpdatePostDate]RANGE[2020-01-01,MAX]"
    written = json.loads(out.read_text())["studies"]
    expected = [s for s in studies if "cancer" in json.dumps(s).lower()
                and s["protocolSection"]["statusModule"]["overallStatus"] == "COMPLETED"
                and s["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"]
                >= "2020-01-01"]
    assert expected and [nct(s) for s in written] == [nct(s) for s in expected]
    mapped = subprocess.run([sys.executable, "-m", "fhir_adapter", "map", "study", str(out),
                             "--ndjson"], capture_output=True, text=True, timeout=600)
    assert mapped.returncode == 0, mapped.stderr
    studies_out = [json.loads(line) for line in mapped.stdout.splitlines()
                   if '"resourceType":"ResearchStudy"' in line.replace(" ", "")]
    assert {i["value"] for r in studies_out for i in r.get("identifier", [])
            if i.get("value", "").startswith("NCT")} >= {nct(s) for s in expected}


def test_pull_by_ids_and_bad_input(studies: list[dict[str, Any]], tmp_path: Path) -> None:
    wanted = [nct(s) for s in studies[:3]]
    out = tmp_path / "three.json"
    with replay_api(studies) as api:
        done = pull(api.api, *wanted, "--output", out, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert api.requests[0]["filter.ids"] == ",".join(wanted)
        assert api.requests[0]["pageSize"] == "1000"
        bad = pull(api.api, "NCT123", "--output", out, cwd=tmp_path)
        assert bad.returncode == 2 and "is not an NCT id" in bad.stderr
        both = pull(api.api, wanted[0], "--output", out, "--load", cwd=tmp_path)
        assert both.returncode == 2 and "one of the two" in both.stderr
        refused = pull(api.api.replace("/api/v2", "/nothing"), wanted[0], "--output",
                       tmp_path / "none.json", cwd=tmp_path)
        assert refused.returncode == 1 and "-> 404" in refused.stderr
        assert not (tmp_path / "none.json").exists()
        assert not (tmp_path / "none.json.partial").exists()
    assert [nct(s) for s in json.loads(out.read_text())["studies"]] == wanted
