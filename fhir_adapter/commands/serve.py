"""`fhir-adapter serve`: the FHIR gateway on werkzeug's threaded development server.

Production runs the same app under gunicorn (`gunicorn "fhir_adapter.gateway:create_app()"`);
this command is the zero-set-up default: SQLite file in the working directory, and with
`--examples` the seed study, its enrollments and adverse events loaded first.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

# The seed files, in load order (a study before the subjects and events that reference it).
EXAMPLES = (("study", "NCT05003921.json"), ("enrollments", "NCT05003921.enrollments.csv"),
            ("adverse-events", "NCT05003921.adverse-events.csv"))
EXAMPLES_STUDY = "NCT05003921"


def find_examples(given: Path | None) -> Path:
    """The examples/ folder: --examples-dir, else the source checkout's (an editable
    install), else ./examples (`pip install .` run from a checkout, then served from there)."""
    candidates = [given] if given else [Path(__file__).resolve().parents[2] / "examples",
                                        Path.cwd() / "examples"]
    for folder in candidates:
        if (folder / EXAMPLES[0][1]).is_file():
            return folder
    raise click.UsageError(
        f"no {EXAMPLES[0][1]} in {' or '.join(str(c) for c in candidates)} (the installed "
        "package does not ship the examples): run from a source checkout or pass "
        "--examples-dir PATH")


def load_examples(database: str | None, folder: Path) -> list[str]:
    """Load the seed files present in `folder` (idempotent: a second run changes nothing);
    one summary line per file."""
    from ..pipeline.load import load_files

    lines = []
    for kind, name in EXAMPLES:
        path = folder / name
        if not path.is_file():
            continue
        options = {} if kind == "study" else {"study": EXAMPLES_STUDY}
        summary = load_files(kind, [path], database=database,
                             warn=lambda text: click.echo(f"warning: {text}", err=True),
                             **options)
        lines.append(f"{name}: {summary}")
    return lines


def _loopback(host: str) -> bool:
    """Whether `host` names a loopback interface only."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _quiet_handler() -> type:
    """werkzeug logs each request line with its query string (identifier=..., PHI): the
    gateway's own access log records method, path and status instead. (Made on use: the
    werkzeug server costs `fhir-adapter --help` 45 ms to import.)"""
    from werkzeug.serving import WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass

    return QuietHandler


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on (0.0.0.0 exposes the server to the network: "
                   "needs --auth smart, or --no-auth to say you mean it).")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--database", envvar="FHIR_ADAPTER_DATABASE_URL",
              help="SQLite file or URL, or postgresql://... [default: fhir-adapter.db]")
@click.option("--public-base-url", envvar="FHIR_ADAPTER_PUBLIC_BASE_URL",
              help="Public URL of /fhir for absolute links (behind a proxy).")
@click.option("--examples", is_flag=True,
              help="Load the seed study, its enrollments and adverse events first.")
@click.option("--examples-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the examples are (default: examples/ of the source checkout).")
@click.option("--auth", type=click.Choice(["none", "smart"]), envvar="FHIR_ADAPTER_AUTH",
              default="none", show_default=True,
              help="smart: SMART Backend Services tokens on every request "
                   "(register clients with `fhir-adapter clients add`).")
@click.option("--no-auth", is_flag=True,
              help="Serve without authorization on an interface other than loopback.")
def serve_command(host: str, port: int, database: str | None, public_base_url: str | None,
                  examples: bool, examples_dir: Path | None, auth: str, no_auth: bool
                  ) -> None:
    """Serve the store over FHIR REST at http://HOST:PORT/fhir (R4; R5 at /fhir/R5)."""
    from werkzeug.serving import run_simple

    from ..gateway import create_app

    if no_auth and auth != "none":
        raise click.UsageError("--no-auth and --auth smart contradict each other")
    if auth == "none" and not _loopback(host):
        if not no_auth:
            raise click.UsageError(
                f"--host {host} exposes the store to the network without authorization: "
                "add --auth smart (see `fhir-adapter clients add`), or --no-auth if a "
                "proxy in front authenticates every request")
        click.echo(f"warning: serving on {host} WITHOUT authorization: anyone who reaches "
                   "the port can read, change and delete everything", err=True)

    if examples:
        for line in load_examples(database, find_examples(examples_dir)):
            click.echo(line, err=True)
    settings: dict[str, object] = {}
    if database:
        settings["DATABASE_URL"] = database
    if public_base_url:
        settings["PUBLIC_BASE_URL"] = public_base_url
    settings["AUTH"] = auth
    app = create_app(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    click.echo(f"FHIR R4 at http://{host}:{port}/fhir (R5 at /fhir/R5); Ctrl+C stops",
               err=True)
    run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False,
               request_handler=_quiet_handler())
