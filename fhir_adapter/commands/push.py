"""`fhir-adapter push BASE_URL`: stored resources to another FHIR server (remote/push.py)."""

from __future__ import annotations

from pathlib import Path

import click

from .options import VERSION_CHOICE
from .store import database_option


@click.command("push")
@click.argument("base_url")
@database_option
@click.option("--study", help="Only this study's resources (ResearchStudy id, NCT id or sponsor "
                              "study id): as `export --study`.")
@click.option("--type", "types", multiple=True, help="Only this type (repeatable).")
@click.option("--since", help="Only resources updated at or after this FHIR instant or date.")
@click.option("--fhir-version", type=VERSION_CHOICE, default="R4", show_default=True,
              help="FHIR version the target speaks.")
@click.option("--dry-run", is_flag=True, help="Compare with the target, write nothing: the "
                                              "summary says what a push would do.")
@click.option("--auth", type=click.Choice(["none", "smart"]), default="none",
              show_default=True, help="smart: SMART Backend Services (needs --client-id, "
                                      "--key, --scope).")
@click.option("--client-id", help="SMART client id registered with the target.")
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM private key of the SMART client (RSA: RS384; EC P-384: ES384).")
@click.option("--key-id", help="kid of the key in the client's registered JWKS.")
@click.option("--scope", default="system/*.write system/*.read", show_default=True,
              help="Scopes asked of the SMART token endpoint.")
@click.option("--bearer", envvar="FHIR_ADAPTER_PUSH_BEARER",
              help="A bearer token to send as is (or $FHIR_ADAPTER_PUSH_BEARER).")
@click.option("--link-patients", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="EHR mode: CSV of subject_id,system,value; references go to the "
                   "hospital's Patient with that identifier, our Patients are not pushed.")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path),
              help="Journal to resume from [default: ./.fhir-adapter-push-<hash>.journal].")
@click.option("--chunk", default=100, show_default=True, type=click.IntRange(1, 1000),
              help="Resources per Bundle.")
@click.option("--retries", default=8, show_default=True, type=click.IntRange(0, 50),
              help="Retries of a request on 429, 5xx, timeouts and dropped connections.")
@click.option("--timeout", default=60.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds to wait for an answer before retrying.")
@click.option("--progress/--no-progress", default=None,
              help="Progress on stderr [default: when a terminal].")
def push_command(base_url: str, database: str | None, study: str | None,
                 types: tuple[str, ...], since: str | None, fhir_version: str, dry_run: bool,
                 auth: str, client_id: str | None, key: Path | None, key_id: str | None,
                 scope: str, bearer: str | None, link_patients: Path | None,
                 checkpoint: Path | None, chunk: int, retries: int, timeout: float,
                 progress: bool | None) -> None:
    """Write the stored resources to the FHIR server at BASE_URL (PUT by id; only what
    differs from the target's copy), resumably; exit 1 if anything failed."""
    import sys

    import requests

    from ..errors import BadRequest
    from ..export import TYPE_NAME
    from ..pipeline.remote import checkpoint as journal
    from ..pipeline.remote.auth import BearerAuth, SmartBackendAuth
    from ..pipeline.remote.http import RemoteError, RetryPolicy, session
    from ..pipeline.remote.push import PatientLinks, Selection, push
    from ..pipeline.remote.target import Target
    from ..store import open_store
    from ..store.reading import since_instant
    from ..validation import normalise_version

    if bad := [t for t in types if not TYPE_NAME.fullmatch(t)]:
        raise click.BadParameter(f"not a resource type name: {bad[0]!r}", param_hint="--type")
    if since:
        try:
            since_instant(since)
        except BadRequest as exc:
            raise click.BadParameter("not a FHIR instant or date", param_hint="--since") from exc
    if auth == "smart" and not (client_id and key):
        raise click.UsageError("--auth smart needs --client-id and --key")
    if auth == "smart" and bearer:
        raise click.UsageError("--auth smart and --bearer: choose one")
    version = normalise_version(fhir_version)
    policy = RetryPolicy(retries=retries, timeout=timeout)
    http = session(policy)
    if bearer:
        http.auth = BearerAuth(bearer)
    elif auth == "smart":
        assert client_id and key
        try:
            http.auth = SmartBackendAuth(base_url, client_id, key, scope, key_id,
                                         http=session(policy))  # its own: no auth loop
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--key") from exc
    selection = Selection(version, study, types, since)
    identity = {"target": base_url.rstrip("/"), **selection.identity(),
                "ehr": str(link_patients.resolve()) if link_patients else None}
    mark: journal.Checkpoint | None = None
    try:
        target = Target(base_url, http, version)
        target.capabilities()
        if not dry_run:
            mark = journal.Checkpoint(
                checkpoint or journal.default_path(identity), identity)
        store = open_store(database)
        try:
            links = PatientLinks(link_patients, store, target) if link_patients else None
            summary = push(store, target, selection, mark or journal.Checkpoint(None, identity),
                           chunk=chunk, dry_run=dry_run, links=links,
                           progress=sys.stderr.isatty() if progress is None else progress)
        finally:
            store.close()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    except (RemoteError, requests.RequestException) as exc:
        where = f"; rerun to resume from {mark.path}" if mark else ""
        raise click.ClickException(f"push stopped: {exc}{where}") from exc
    for text in summary.warnings:
        click.echo(f"warning: {text}", err=True)
    if summary.resumed:
        click.echo("resumed from the checkpoint (its counts are included)", err=True)
    for line in summary.lines():
        click.echo(("would be: " if dry_run else "") + line)
    for failure in summary.failures:
        click.echo(f"failed: {failure}", err=True)
    if summary.failures:
        if mark:
            click.echo(f"checkpoint kept: {mark.path} (a rerun tries the failed again)",
                       err=True)
        sys.exit(1)
    if mark:
        mark.remove()
