"""What the pipeline does with a record's data-quality findings: report them, or (strict)
refuse the row."""

from __future__ import annotations

from ..errors import InputError
from ..records import Finding
from .report import Reporter


def findings_error(findings: tuple[Finding, ...], report: Reporter | None,
                   strict: bool) -> InputError | None:
    """Under `strict`, the error that refuses a row with findings (the first, the others as
    details); otherwise None, each finding reported."""
    if not findings:
        return None
    if strict:
        error = findings[0].error()
        error.details.extend(f"{f.field}: {f.message} [{f.rule}]" for f in findings[1:])
        error.message += " (--strict: findings are errors)"
        return error
    if report is not None:
        for finding in findings:
            report.finding(finding)
    return None
