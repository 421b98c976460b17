"""How the pipeline tells its caller what happens: warnings, data-quality findings, progress.

`Reporter` is the interface (the command line prints, `$ingest` collects into its answer);
`Collector` keeps everything in memory (tests, the gateway); `Tally` counts findings by rule
on the way to another reporter (a load's summary). The parallel load relays a child's calls
to the parent's reporter (parallel.py), so every method takes plain, picklable values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Protocol

from ..records import Finding


class Reporter(Protocol):
    """What a pipeline run reports, as it happens."""

    def warn(self, text: str) -> None:
        """A fact that could not be mapped, or was mapped with a choice made."""

    def finding(self, finding: Finding) -> None:
        """A row whose values contradict each other, mapped as recorded."""

    def progress(self, label: str, count: int, done: bool = False) -> None:
        """`count` resources of `label` stored so far (`done`: the last call for it)."""


class Silent:
    """A reporter that keeps and shows nothing: the base of the others, each of which
    overrides what it wants."""

    def warn(self, text: str) -> None:
        """Not kept."""

    def finding(self, finding: Finding) -> None:
        """Not kept."""

    def progress(self, label: str, count: int, done: bool = False) -> None:
        """Not shown."""


class Collector(Silent):
    """Keeps warnings and findings in memory, in the order they came."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.findings: list[Finding] = []

    def warn(self, text: str) -> None:
        """Keep the warning."""
        self.warnings.append(text)

    def finding(self, finding: Finding) -> None:
        """Keep the finding."""
        self.findings.append(finding)


class Tally:
    """Passes every call on to `inner`, counting findings by rule on the way."""

    def __init__(self, inner: Reporter | None, counts: Counter[str]) -> None:
        self.inner, self.counts = inner, counts

    def warn(self, text: str) -> None:
        """Pass the warning on."""
        if self.inner is not None:
            self.inner.warn(text)

    def finding(self, finding: Finding) -> None:
        """Count the finding, and pass it on."""
        self.counts[finding.rule] += 1
        if self.inner is not None:
            self.inner.finding(finding)

    def progress(self, label: str, count: int, done: bool = False) -> None:
        """Pass progress on."""
        if self.inner is not None:
            self.inner.progress(label, count, done)


class Warnings(Silent):
    """A reporter over a plain `warn(text)` callable (findings are warned too)."""

    def __init__(self, warn: Callable[[str], None]) -> None:
        self._warn = warn

    def warn(self, text: str) -> None:
        """Call the function."""
        self._warn(text)

    def finding(self, finding: Finding) -> None:
        """Warn with the finding's text (file, row, field, message and rule)."""
        self.warn(f"finding: {finding}")
