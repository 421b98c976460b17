"""The study safety dashboard: HTML pages at `/` and `/studies/<ResearchStudy id>`.

The pages hold no data. Their scripts read everything through this server's own FHIR REST API
(paging through every page of every search), so the dashboard sees exactly what a FHIR client
sees and every number on it links to the FHIR search it was counted from.

Setting DASHBOARD (FHIR_ADAPTER_DASHBOARD): "auto" (default) serves it unless authorization is
on (AUTH, FHIR_ADAPTER_AUTH, anything but empty/"none"/"off"), "on" serves it always (its
FHIR calls then need what the API needs: the browser sends no token of its own, so behind
auth it shows the API's 401 and no data), "off" never. Off, its paths answer 404 saying why.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, Flask, Response, render_template, request

# The extension on AdverseEvent carrying SDTM SUPPAE AETRTEM (treatment-emergent flag). Its
# final URL is decided elsewhere (issue: SUPPAE qualifiers): point this at it. The page reads
# it in one place (study.js treatmentEmergent) and shows "unknown" where it is absent.
TREATMENT_EMERGENT_URL = "https://fhir-adapter.dev/fhir/StructureDefinition/treatment-emergent"

_AUTH_OFF = ("", "none", "off", "false", "0")
_MODES = ("auto", "on", "off")
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def auth_on(conf: dict[str, Any]) -> bool:
    """Whether the gateway requires authorization. Fails closed: any value but empty, none,
    off, false or 0 counts as on."""
    return str(conf.get("AUTH") or "").strip().lower() not in _AUTH_OFF


def dashboard_mode(conf: dict[str, Any]) -> str:
    """The DASHBOARD setting, checked."""
    mode = str(conf.get("DASHBOARD") or "auto").strip().lower()
    if mode not in _MODES:
        raise ValueError(f"FHIR_ADAPTER_DASHBOARD must be one of {', '.join(_MODES)}, "
                         f"not {conf.get('DASHBOARD')!r}")
    return mode


def enabled(conf: dict[str, Any]) -> bool:
    """Whether the dashboard is served under these settings."""
    mode = dashboard_mode(conf)
    return mode == "on" or (mode == "auto" and not auth_on(conf))


OFF_WITH_AUTH = ("The dashboard is off on this server: authorization is on "
                 "(FHIR_ADAPTER_AUTH) and the dashboard's pages would bypass it. Set "
                 "FHIR_ADAPTER_DASHBOARD=on to serve it anyway (it then shows only what "
                 "its own FHIR requests are authorized to read).")
OFF_BY_SETTING = "The dashboard is off on this server (FHIR_ADAPTER_DASHBOARD=off)."


def _blueprint(on: bool, reason: str) -> Blueprint:
    bp = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
                   static_url_path="/dashboard/static")

    @bp.before_request
    def _gate() -> Response | None:
        if not on:
            return _off(reason)
        return None

    @bp.get("/")
    def index() -> str:
        return render_template("dashboard/index.html")

    @bp.get("/studies/<study_id>")
    def study(study_id: str) -> str | Response:
        if not _FHIR_ID.fullmatch(study_id):
            body = render_template("dashboard/off.html", title="No such study",
                                   reason=f"{study_id!r} is not a FHIR resource id.")
            return Response(body, status=404, content_type="text/html; charset=utf-8")
        return render_template("dashboard/study.html", study_id=study_id,
                               te_url=TREATMENT_EMERGENT_URL)

    return bp


def _off(reason: str) -> Response:
    """404 saying the dashboard is off: HTML for browsers, an OperationOutcome otherwise."""
    if request.accept_mimetypes.best_match(["text/html", "application/fhir+json"]) == "text/html":
        body = render_template("dashboard/off.html", title="Dashboard off", reason=reason)
        return Response(body, status=404, content_type="text/html; charset=utf-8")
    outcome = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "not-found", "diagnostics": reason}]}
    return Response(json.dumps(outcome), status=404,
                    content_type="application/fhir+json; charset=utf-8")


def init_app(app: Flask, conf: dict[str, Any]) -> None:
    """Register the dashboard's routes on the gateway app (served, or answering 404)."""
    on = enabled(conf)
    reason = OFF_BY_SETTING if dashboard_mode(conf) == "off" else OFF_WITH_AUTH
    app.register_blueprint(_blueprint(on, reason))
    app.config["FHIR_ADAPTER_DASHBOARD"] = on
