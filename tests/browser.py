"""Real-browser helpers: Debian's Chromium under Playwright, a gateway process on loopback.

Chromium comes from Debian (`apt-get install chromium`), installed here on first use when it
is missing and we are root (as on CI); `playwright install` downloads a browser build of its
own and cannot run where only the package registries are reachable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from loopback import free_port, process, serve_command

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts" / "dashboard"  # git-ignored: screenshots, downloads
AXE = ROOT / "tests" / "vendor" / "axe.min.js"


def ensure_chromium() -> str:
    """/usr/bin/chromium, installed with apt-get when missing and we are root; else a failure
    saying what to install."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's Chromium "
                    "(`apt-get install chromium`, as root)", pytrace=False)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            pytest.fail(f"`{' '.join(command)}` failed ({done.returncode}); the browser tests "
                        f"need {CHROMIUM}:\n{done.stderr[-2000:]}", pytrace=False)
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"apt-get installed chromium but {CHROMIUM} is not there", pytrace=False)
    return CHROMIUM


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright Browser), closed afterwards."""
    from playwright.sync_api import sync_playwright

    executable = ensure_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def cli(env: dict[str, str], *args: str | Path) -> str:
    """Run `fhir-adapter ARGS`; its stdout, or a failure with its stderr."""
    done = subprocess.run([sys.executable, "-m", "fhir_adapter", *map(str, args)], env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"fhir-adapter {' '.join(map(str, args))}:\n{done.stderr[-3000:]}"
    return done.stdout


@contextmanager
def serving(database: str, log: Path, **settings: str) -> Iterator[str]:
    """`fhir-adapter serve` over `database` on a free loopback port; yields its root URL."""
    port = free_port()
    env = {**os.environ, **{f"FHIR_ADAPTER_{k}": v for k, v in settings.items()}}
    root = f"http://127.0.0.1:{port}"
    with process(serve_command(port, database), log, f"{root}/fhir/metadata", env=env,
                 timeout=60):
        yield root


def fhir_all(url: str) -> list[dict[str, Any]]:
    """Every match of a FHIR search, following `next` links (independent of the page's JS)."""
    found: list[dict[str, Any]] = []
    total = None
    while url:
        bundle = requests.get(url, headers={"Accept": "application/fhir+json"}, timeout=60).json()
        assert bundle.get("resourceType") == "Bundle", bundle
        total = bundle.get("total", total)
        found += [e["resource"] for e in bundle.get("entry", [])
                  if e.get("search", {}).get("mode", "match") == "match"]
        url = next((link["url"] for link in bundle.get("link", [])
                    if link["relation"] == "next"), "")
    assert total is None or total == len(found), (total, len(found))
    return found


def fhir_total(url: str) -> int:
    """The server's total for a search (`_summary=count`)."""
    sep = "&" if "?" in url else "?"
    bundle = requests.get(f"{url}{sep}_summary=count", timeout=60).json()
    assert bundle.get("resourceType") == "Bundle", bundle
    return int(bundle["total"])


def run_axe(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (WCAG 2.x A/AA and best practices)."""
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ': ' + n.failureSummary)}));
    }""")
    return list(result)
