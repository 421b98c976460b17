"""The dashboard in a real browser (Debian's Chromium via Playwright) against a real server.

The server holds the seed study (examples/) and the CDISCPILOT01 SDTM slice (DM/DS/AE, trial
design), loaded with the CLI, and serves at most 7 resources a page (MAX_COUNT) so that every
search the page makes spans several pages. Every figure the page links to a search "exactly"
must equal that search's total on the server; the other figures are recomputed here from the
FHIR resources, independently of the page's scripts.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from browser import ARTIFACTS, chromium, cli, fhir_all, fhir_total, run_axe, serving

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SLICE = ROOT / "tests" / "fixtures" / "sdtm" / "cdiscpilot01-slice"
REGISTERED = {"on-study", "on-study-intervention", "on-study-observation", "follow-up"}
MEDDRA = "https://fhir-adapter.dev/fhir/StructureDefinition/meddra-classification"
SEED, SDTM = "NCT05003921", "CDISCPILOT01"


def _rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as fh:
        return sum(1 for _ in csv.DictReader(fh))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("dashboard")
    database = f"sqlite:///{folder / 'fhir.db'}"
    env = {**__import__("os").environ, "FHIR_ADAPTER_DATABASE_URL": database}
    cli(env, "load", "study", EXAMPLES / f"{SEED}.json")
    cli(env, "load", "enrollments", EXAMPLES / f"{SEED}.enrollments.csv")
    cli(env, "load", "adverse-events", EXAMPLES / f"{SEED}.adverse-events.csv",
        "--timezone", "America/Antigua")
    cli(env, "load", "study", *(SLICE / f"{d}.xpt" for d in ("ts", "ta", "ti", "te")))
    cli(env, "load", "enrollments", SLICE / "dm.csv", "--study", SDTM,
        "--disposition", SLICE / "ds.csv")
    cli(env, "load", "adverse-events", SLICE / "ae.csv", "--study", SDTM)
    with serving(database, folder / "serve.log", MAX_COUNT="7") as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


class Page:
    """A browser page that records console errors and uncaught exceptions."""

    def __init__(self, browser: Any, root: str) -> None:
        self.context = browser.new_context(viewport={"width": 1440, "height": 900},
                                           accept_downloads=True)
        self.page = self.context.new_page()
        self.root = root
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}")
                     if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def open(self, path: str) -> Any:
        self.page.goto(self.root + path)
        self.page.wait_for_selector("body[data-ready='1'], body[data-ready='error']",
                                    timeout=60_000)
        assert self.page.get_attribute("body", "data-ready") == "1", self.page.inner_text("#status")
        return self.page

    def figures(self, scope: str = "body") -> list[dict[str, Any]]:
        return self.page.eval_on_selector_all(f"{scope} a.num", """els => els.map(a => ({
            text: a.textContent, href: a.href, exact: a.dataset.exact === '1', title: a.title}))""")

    def tile(self, label: str) -> dict[str, Any]:
        found = self.page.eval_on_selector_all(".tile", """(els, label) => els
            .filter(t => t.querySelector('.tile-label').textContent === label)
            .map(t => { const a = t.querySelector('a.num');
                        return {value: Number(a.textContent), href: a.href,
                                exact: a.dataset.exact === '1'}; })""",
            label)
        assert len(found) == 1, label
        return found[0]

    def table(self, name: str) -> list[list[str]]:
        return self.page.eval_on_selector_all(f"table[data-table='{name}'] tr", """rows => rows.map(
            r => [...r.children].map(c => c.textContent.trim()))""")

    def rerender(self, action: Any) -> None:
        before = int(self.page.get_attribute("body", "data-renders") or 0)
        action()
        self.page.wait_for_function(f"Number(document.body.dataset.renders) > {before} "
                                    "&& document.body.dataset.ready === '1'")

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture()
def page(browser: Any, root: str) -> Iterator[Page]:
    p = Page(browser, root)
    yield p
    p.close()


def _study_id(root: str, identifier: str) -> str:
    studies = fhir_all(f"{root}/fhir/ResearchStudy?identifier={identifier}")
    assert len(studies) == 1
    return str(studies[0]["id"])


def _check_exact(figures: list[dict[str, Any]]) -> int:
    """Each exact figure equals its search's total on the server; how many were checked."""
    exact = [f for f in figures if f["exact"]]
    for figure in exact:
        assert int(figure["text"]) == fhir_total(figure["href"]), figure
    return len(exact)


def test_index_lists_studies_with_fhir_totals(page: Page, root: str) -> None:
    p = page.open("/")
    rows = page.table("studies")
    assert rows[0][:6] == ["Title", "Identifiers", "Status", "Phase", "Subjects", "Adverse events"]
    assert len(rows) - 1 == fhir_total(f"{root}/fhir/ResearchStudy") == 2
    by_id = {r[1]: r for r in rows[1:]}
    seed = next(r for k, r in by_id.items() if SEED in k)
    sdtm = next(r for k, r in by_id.items() if SDTM in k)
    assert int(seed[4]) == _rows(EXAMPLES / f"{SEED}.enrollments.csv")
    assert int(seed[5]) == _rows(EXAMPLES / f"{SEED}.adverse-events.csv")
    assert int(sdtm[4]) == _rows(SLICE / "dm.csv") and int(sdtm[5]) == _rows(SLICE / "ae.csv")
    assert _check_exact(page.figures()) == 4
    page.shot("index")
    p.click(f"text={seed[0]}")
    p.wait_for_selector("body[data-ready='1']")
    assert urlsplit(p.url).path == f"/studies/{_study_id(root, SEED)}"
    assert page.errors == []


def _subjects(root: str, study: str) -> list[dict[str, Any]]:
    """Each subject as the page should count it, computed here from the R5 resources."""
    arms = {g["linkId"]: g["name"] for g in
            fhir_all(f"{root}/fhir/R5/ResearchStudy?_id={study}")[0].get("comparisonGroup", [])}
    out = []
    for rs in fhir_all(f"{root}/fhir/R5/ResearchSubject?study={study}&_count=50"):
        states = [p for p in rs.get("progress", []) if "subjectState" in p]
        state = states[-1]["subjectState"]["coding"][0]["code"]
        reason = states[-1].get("reason", {}).get("coding", [{}])[0]
        arm = rs.get("assignedComparisonGroup") or rs.get("actualComparisonGroup")
        out.append({"state": state, "arm": arms.get(arm, arm) if arm else "No arm",
                    "patient": rs["subject"]["reference"],
                    "enrolled": any(p["subjectState"]["coding"][0]["code"] in REGISTERED
                                    for p in states),
                    "completed": state == "off-study" and reason.get("code") == "intOrObsComplete",
                    "reason": reason.get("display") if state == "off-study" else None})
    return out


def _events(root: str, study: str, subjects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    arm = {s["patient"]: s["arm"] for s in subjects}
    out = []
    for ae in fhir_all(f"{root}/fhir/AdverseEvent?study={study}&_count=50"):
        meddra = next((e for e in ae.get("extension", []) if e["url"] == MEDDRA), {})
        soc = next((e["valueCoding"]["display"] for e in meddra.get("extension", [])
                    if e["url"] == "soc"), "SOC not coded")
        out.append({"soc": soc, "arm": arm.get(ae["subject"]["reference"], "No arm"),
                    "severity": ae.get("severity", {}).get("coding", [{}])[0].get("code",
                                                                                  "not recorded"),
                    "seriousness": ae["seriousness"]["coding"][0]["code"],
                    "subject": ae["subject"]["reference"], "date": ae.get("date")})
    return out


@pytest.mark.parametrize("identifier", [SEED, SDTM])
def test_study_page_figures_equal_the_fhir_api(page: Page, root: str, identifier: str) -> None:
    study = _study_id(root, identifier)
    page.open(f"/studies/{study}")
    # The source files, the FHIR totals and the page agree.
    source = (EXAMPLES / f"{SEED}.enrollments.csv", EXAMPLES / f"{SEED}.adverse-events.csv") \
        if identifier == SEED else (SLICE / "dm.csv", SLICE / "ae.csv")
    assert page.tile("Screened")["value"] == _rows(source[0])
    assert page.tile("Adverse events")["value"] == _rows(source[1])
    assert _check_exact(page.figures()) == 13  # 7 enrollment, 6 AE tiles

    header = page.page.inner_text("#header")
    r4 = fhir_all(f"{root}/fhir/ResearchStudy?_id={study}")[0]
    assert r4["title"] in header and r4["status"] in header
    assert r4["phase"]["coding"][0]["display"] in header
    assert all(i["value"] in header for i in r4["identifier"])
    assert all(s["display"] in header for s in r4.get("site", []))

    subjects = _subjects(root, study)
    events = _events(root, study, subjects)
    off = [s for s in subjects if s["state"] == "off-study"]
    assert page.tile("Completed")["value"] == sum(s["completed"] for s in off)
    assert page.tile("Discontinued")["value"] == sum(not s["completed"] for s in off)
    assert page.tile("Subjects with an event")["value"] == len({e["subject"] for e in events})
    reasons = {r[0]: int(r[3]) for r in page.table("reasons")[1:]}
    assert reasons == dict(Counter(s["reason"] or "reason not recorded" for s in off))
    arms = {r[0]: [int(x) for x in r[1:]] for r in page.table("arms")[1:]}
    expected_arms = {}
    for arm in {s["arm"] for s in subjects}:
        a = [s for s in subjects if s["arm"] == arm]
        expected_arms[arm] = [len(a), sum(s["state"] == "ineligible" for s in a),
                              sum(s["enrolled"] for s in a),
                              sum(s["state"] in REGISTERED for s in a),
                              sum(s["completed"] for s in a),
                              sum(s["state"] == "off-study" and not s["completed"] for s in a)]
    assert {k: v for k, v in arms.items() if v[0]} == expected_arms
    heat = page.table("heat")
    levels = heat[0][1:-1]
    cells = {(r[0], level): int(v)
             for r in heat[1:] for level, v in zip(levels, r[1:-1], strict=True)}
    counted = Counter((e["soc"], e["severity"]) for e in events)
    assert {k: v for k, v in cells.items() if v} == dict(counted)
    te = {r[0]: int(r[1]) for r in page.table("te")[1:]}
    # No loader writes the treatment-emergent extension yet: every event is "unknown".
    assert te["Unknown (flag absent)"] == len(events)
    sae = page.table("sae")[1:]
    assert len(sae) == sum(e["seriousness"] == "Serious" for e in events)
    assert page.tile("Serious")["value"] == len(sae)
    assert page.errors == []
    page.shot(f"study-{identifier}")


def test_filters_change_the_figures(page: Page, root: str) -> None:
    seed = _study_id(root, SEED)
    p = page.open(f"/studies/{seed}")
    page.rerender(lambda: p.select_option("#f-serious", "Serious"))
    assert page.tile("Adverse events")["value"] == fhir_total(
        f"{root}/fhir/AdverseEvent?study={seed}&seriousness=Serious") == 2
    assert len(page.table("sae")) - 1 == 2
    assert parse_qs(urlsplit(p.url).query) == {"seriousness": ["Serious"]}
    assert _check_exact(page.figures("#ae-summary")) == 6
    page.rerender(lambda: p.click("button[type=reset]"))
    assert page.tile("Adverse events")["value"] == 13
    # The heat map by CTCAE grade: same events per SOC, spread over the grades recorded.
    by_severity = {r[0]: r[-1] for r in page.table("heat")[1:]}
    page.rerender(lambda: p.select_option("#f-scale", "grade"))
    heat = page.table("heat")
    assert heat[0][1:6] == [f"Grade {g}" for g in range(1, 6)]
    assert {r[0]: r[-1] for r in heat[1:]} == by_severity
    grades = Counter()
    for ae in fhir_all(f"{root}/fhir/AdverseEvent?study={seed}"):
        grade = next((e["valueCodeableConcept"]["coding"][0]["display"]
                      for e in ae.get("extension", []) if e["url"].endswith("/ae-grade")), None)
        grades[f"Grade {grade.split()[1]}" if grade else "not recorded"] += 1
    totals = {level: sum(int(r[i]) for r in heat[1:]) for i, level in enumerate(heat[0]) if i}
    assert {k: v for k, v in totals.items() if v and k != "Total"} == dict(grades)
    assert parse_qs(urlsplit(p.url).query) == {"scale": ["grade"]}

    sdtm = _study_id(root, SDTM)
    p = page.open(f"/studies/{sdtm}")
    page.rerender(lambda: p.fill("#f-from", "2013-01-01"))
    page.rerender(lambda: p.fill("#f-to", "2013-06-30"))
    tile = page.tile("Adverse events")
    assert tile["exact"]
    assert tile["value"] == fhir_total(
        f"{root}/fhir/AdverseEvent?study={sdtm}&date=ge2013-01-01&date=le2013-06-30")
    assert 0 < tile["value"] < 51
    assert _check_exact(page.figures("#ae-summary")) == 6
    page.rerender(lambda: p.click("button[type=reset]"))
    subjects = _subjects(root, sdtm)
    events = _events(root, sdtm, subjects)
    for arm in ("Placebo", "Xanomeline High Dose", "Xanomeline Low Dose"):
        page.rerender(lambda arm=arm: p.select_option("#f-arm", arm))
        tile = page.tile("Adverse events")
        assert not tile["exact"]  # arm is no search parameter: counted from the search
        assert tile["value"] == sum(e["arm"] == arm for e in events)
        assert page.tile("Severity mild")["value"] == sum(
            e["arm"] == arm and e["severity"] == "mild" for e in events)
    assert parse_qs(urlsplit(p.url).query)["arm"] == ["Xanomeline Low Dose"]
    # The filters survive a reload (they are in the URL).
    p.reload()
    p.wait_for_selector("body[data-ready='1']")
    assert p.input_value("#f-arm") == "Xanomeline Low Dose"
    assert page.errors == []


def test_downloads(page: Page, root: str) -> None:
    p = page.open(f"/studies/{_study_id(root, SDTM)}")
    saved = {}
    for selector, name in (("button.csv[data-table='heat']", "heat.csv"),
                           ("button.csv[data-table='arms']", "arms.csv"),
                           ("button.png[data-chart='heat']", "heat.png"),
                           ("button.svg[data-chart='swimmer']", "swimmer.svg"),
                           ("button.png[data-chart='timeline']", "timeline.png")):
        with p.expect_download() as info:
            p.click(selector)
        download = info.value
        assert download.suggested_filename == f"cdiscpilot01-{name.replace('.', '.', 1)}"
        path = ARTIFACTS / "downloads" / download.suggested_filename
        path.parent.mkdir(parents=True, exist_ok=True)
        download.save_as(path)
        saved[name] = path.read_bytes()
    assert list(csv.reader(io.StringIO(saved["heat.csv"].decode()))) == page.table("heat")
    assert list(csv.reader(io.StringIO(saved["arms.csv"].decode()))) == page.table("arms")
    assert saved["heat.png"].startswith(b"\x89PNG") and saved["timeline.png"].startswith(b"\x89PNG")
    assert b"<svg" in saved["swimmer.svg"][:200] and b"01-701-" in saved["swimmer.svg"]
    assert page.errors == []


def test_accessibility_and_keyboard(page: Page, root: str) -> None:
    for path in ("/", f"/studies/{_study_id(root, SEED)}", f"/studies/{_study_id(root, SDTM)}"):
        p = page.open(path)
        violations = run_axe(p)
        assert violations == [], json.dumps(violations, indent=1)
    p.keyboard.press("Tab")
    assert p.evaluate("document.activeElement.className") == "skip"
    p.keyboard.press("Enter")
    assert p.evaluate("document.activeElement.id") == "main"
    # The filters work from the keyboard alone.
    p.focus("#f-serious")
    page.rerender(lambda: p.keyboard.press("ArrowDown"))
    assert p.input_value("#f-serious") == "Serious"
    assert page.errors == []


def test_unknown_study_says_so(page: Page, root: str) -> None:
    page.page.goto(f"{root}/studies/no-such-study")
    page.page.wait_for_selector("body[data-ready='error']")
    status = page.page.inner_text("#status")
    assert "404" in status and "ResearchStudy/no-such-study" in status
    assert page.page.get_attribute("#status", "role") == "alert"
    # The browser logs the failed request itself; nothing else went wrong.
    assert all("404" in e for e in page.errors), page.errors


def test_dashboard_off_page_is_accessible(browser: Any, tmp_path: Path) -> None:
    # The page a browser gets where the dashboard is off (with AUTH on, the same page says
    # why: tests/test_dashboard_settings.py); set here with DASHBOARD=off, which needs no
    # identity-provider settings to start the server.
    database = f"sqlite:///{tmp_path / 'off.db'}"
    with serving(database, tmp_path / "serve.log", DASHBOARD="off") as url:
        p = Page(browser, url)
        response = p.page.goto(f"{url}/?{urlencode({'x': 1})}")
        assert response.status == 404
        assert "dashboard is off" in p.page.inner_text("main")
        assert run_axe(p.page) == []
        p.close()


def _rewrite_links(route: Any, mapping: Any) -> None:
    """Answer the request from the real server, passing its Bundle's links through `mapping`
    (None drops the link)."""
    response = route.fetch(url=route.request.url.replace("_cursor=", "_offset="))
    bundle = response.json()
    bundle["link"] = [dict(link, url=mapping(link["url"])) for link in bundle.get("link", [])
                      if mapping(link["url"]) is not None]
    route.fulfill(response=response, json=bundle)


def test_paging_by_cursor_follows_every_next_link(page: Page, root: str) -> None:
    # A server whose next links carry an opaque cursor, not _offset: the page follows them
    # one by one to the last (served here by the real server, links rewritten).
    seen: list[str] = []

    def handler(route: Any) -> None:
        seen.append(route.request.url)
        _rewrite_links(route, lambda url: url.replace("_offset=", "_cursor="))

    page.page.route("**/fhir/AdverseEvent?*", handler)
    sdtm = _study_id(root, SDTM)
    page.open(f"/studies/{sdtm}")
    assert page.tile("Adverse events")["value"] == 51
    pages = [u for u in seen if "_count=1000" in u or "_cursor=" in u]
    assert len(pages) == 8 and sum("_cursor=" in u for u in pages) == 7  # 51 at 7 a page
    assert page.errors == []


def test_a_short_search_is_an_error_not_a_figure(page: Page, root: str) -> None:
    # A server that caps silently: the Bundle says 51 but no next link leads to the rest.
    page.page.route("**/fhir/AdverseEvent?*", lambda route: _rewrite_links(
        route, lambda url: None if "_offset=" in url else url))
    page.page.goto(f"{root}/studies/{_study_id(root, SDTM)}")
    page.page.wait_for_selector("body[data-ready='error']")
    status = page.page.inner_text("#status")
    assert "read 7 of 51 matches" in status, status
    assert page.page.inner_text("#ae-summary") == ""  # no partial figure shown


def test_a_looping_next_link_is_an_error(page: Page, root: str) -> None:
    # Next links that lead back to a page already read never end the search, nor count twice.
    page.page.route("**/fhir/AdverseEvent?*", lambda route: _rewrite_links(
        route, lambda url: url.replace("_offset=", "_loop=")))
    page.page.goto(f"{root}/studies/{_study_id(root, SDTM)}")
    page.page.wait_for_selector("body[data-ready='error']")
    assert "came twice" in page.page.inner_text("#status")


def test_charts_refit_a_resized_window(page: Page, root: str) -> None:
    p = page.open(f"/studies/{_study_id(root, SDTM)}")
    wide = p.eval_on_selector("#chart-heat canvas", "c => c.getBoundingClientRect().width")
    page.rerender(lambda: p.set_viewport_size({"width": 1024, "height": 768}))
    narrow = p.eval_on_selector("#chart-heat canvas", "c => c.getBoundingClientRect().width")
    assert narrow < wide
    assert p.evaluate("document.documentElement.scrollWidth") <= 1024  # no sideways scroll
    page.shot("study-CDISCPILOT01-1024")
    assert page.errors == []
