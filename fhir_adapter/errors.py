"""One small exception hierarchy: every error the adapter raises knows how to become an
OperationOutcome (HTTP) or one clear line (command line)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome issue: where (FHIRPath-style), what, how bad."""

    severity: str  # fatal | error | warning | information
    code: str  # OperationOutcome issue type: invalid, structure, required, value, ...
    message: str
    expression: str | None = None

    def to_fhir(self) -> dict[str, Any]:
        out: dict[str, Any] = {"severity": self.severity, "code": self.code,
                               "diagnostics": self.message}
        if self.expression:
            out["expression"] = [self.expression]
        return out

    def __str__(self) -> str:
        where = f"{self.expression}: " if self.expression else ""
        return f"{self.severity}: {where}{self.message}"


class FhirError(Exception):
    """Becomes an OperationOutcome; subclasses set status and issue code."""

    status, code = 500, "exception"

    def __init__(self, message: str, issues: list[Issue] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.issues = issues or [Issue("error", self.code, message)]
        self.headers = headers or {}

    def outcome(self) -> dict[str, Any]:
        return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in self.issues]}


class BadRequest(FhirError):
    status, code = 400, "invalid"


class NotFound(FhirError):
    status, code = 404, "not-found"


class MethodNotAllowed(FhirError):
    status, code = 405, "not-supported"


class NotAcceptable(FhirError):
    status, code = 406, "not-supported"


class Conflict(FhirError):
    status, code = 409, "conflict"


class Gone(FhirError):
    status, code = 410, "deleted"


class PreconditionFailed(FhirError):
    status, code = 412, "conflict"


class PayloadTooLarge(FhirError):
    status, code = 413, "too-costly"


class UnsupportedMediaType(FhirError):
    status, code = 415, "not-supported"


class InvalidResource(FhirError):
    """A resource that fails validation: 422 with one issue per problem."""

    status, code = 422, "processing"


@dataclass
class InputError(Exception):
    """Bad source input: names the file, the row (or line/record) and the field."""

    file: str
    message: str
    row: int | None = None
    field_name: str | None = None
    details: list[str] = field(default_factory=list)
    # The bad rows that an error about a whole file sums up (the first few), and how many
    # more there were: the command line lists them before the summary.
    rows: list[InputError] = field(default_factory=list)
    more_rows: int = 0

    def row_texts(self) -> list[str]:
        """Each listed row's text, then how many more there were (an OperationOutcome's)."""
        more = [f"... and {self.more_rows} more"] if self.more_rows else []
        return [str(row) for row in self.rows] + more

    def lines(self) -> list[str]:
        """What the command line prints: each listed row (and its details), then this."""
        out = []
        for at, text in enumerate(self.row_texts()):
            out.append(f"error: {text}")
            if at < len(self.rows):
                out += [f"  also: {detail}" for detail in self.rows[at].details]
        return [*out, f"error: {self}"]

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.field_name:
            where += f", field {self.field_name}"
        return f"{where}: {self.message}"


class InputWarning(UserWarning):
    """Something the source lacks or we could not map; reported, never silently dropped."""
