"""The command line's pipeline reporter: warnings and findings on stderr, findings also as
JSON Lines in the `--report FILE`, a resource counter when stderr is a terminal."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import IO, Any

import click
import orjson

from ..findings import RULES
from ..records import Finding


def report_option(func: Any) -> Any:
    """--report FILE and --strict, shared by `map` and `load` of rows."""
    func = click.option("--strict", is_flag=True,
                        help="Refuse rows with data-quality findings (values that contradict "
                             "each other), as errors, instead of mapping them as recorded.")(func)
    return click.option("--report", "report_file", type=click.Path(dir_okay=False, path_type=Path),
                        help="Write each data-quality finding here, one JSON object a line "
                             "(file, row, field, rule, message).")(func)


class Console:
    """Prints warnings and findings on stderr; writes findings to `report_file` too."""

    def __init__(self, report_file: Path | None = None, progress: bool | None = None,
                 every: int = 200) -> None:
        self.counts: Counter[str] = Counter()
        self._file: IO[bytes] | None = open(report_file, "wb") if report_file else None  # noqa: SIM115 (closed by close())
        self._progress = sys.stderr.isatty() if progress is None else progress
        self._every = every

    def warn(self, text: str) -> None:
        """One warning line."""
        click.echo(f"warning: {text}", err=True)

    def finding(self, finding: Finding) -> None:
        """One finding line (and a line of the report file)."""
        self.counts[finding.rule] += 1
        click.echo(f"finding: {finding}", err=True)
        if self._file is not None:
            self._file.write(orjson.dumps(finding.as_dict()) + b"\n")
            self._file.flush()

    def progress(self, label: str, count: int, done: bool = False) -> None:
        """A counter that rewrites its own line, every `every` resources."""
        if not self._progress:
            return
        if done and count >= self._every:
            sys.stderr.write(f"\r{label}: {count} resources\n")
        elif not done and count % self._every == 0:
            sys.stderr.write(f"\r{label}: {count} resources")
            sys.stderr.flush()

    def summary(self) -> list[str]:
        """'findings: N (rule n, ...)' once anything was found."""
        if not self.counts:
            return []
        by_rule = ", ".join(f"{rule} {self.counts[rule]}" for rule in RULES if rule in self.counts)
        return [f"data-quality findings: {sum(self.counts.values())} ({by_rule}); rows mapped "
                "as recorded and tagged (meta.tag)"]

    def close(self) -> None:
        """Close the report file."""
        if self._file is not None:
            self._file.close()
            self._file = None
