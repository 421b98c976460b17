"""`fhir-adapter clients`: the backend clients SMART Backend Services lets in (with
`serve --auth smart`). A client is a name, the scopes it may be granted and its public keys
(a JWKS file, stored, or a JWKS URL, fetched when needed)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from .store import database_option


@contextmanager
def _registry(database: str | None) -> Iterator[Any]:
    """The client Registry of the database (a Registry, imported on use), its engine
    disposed after."""
    from ..auth.registry import Registry
    from ..store.schema import make_engine

    engine = make_engine(database)
    try:
        yield Registry(engine)
    finally:
        engine.dispose()


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group("clients")
def clients_group() -> None:
    """Register, list, change and remove backend clients (serve --auth smart)."""


@clients_group.command("add")
@click.argument("name")
@click.option("--jwks", "jwks", required=True, metavar="FILE|URL",
              help="The client's public keys: a JWKS file or an https URL serving one.")
@click.option("--scope", required=True,
              help='Scopes it may be granted, e.g. "system/ResearchStudy.rs system/Patient.r".')
@database_option
def add_command(name: str, jwks: str, scope: str, database: str | None) -> None:
    """Register client NAME; its client_id is printed alone on the last line."""
    from ..auth.registry import RegistryError

    try:
        with _registry(database) as registry:
            client = registry.add(name, jwks, scope)
    except RegistryError as exc:
        raise _fail(exc) from exc
    click.echo(f"registered {client.name}: {client.scope}", err=True)
    click.echo(client.client_id)


@clients_group.command("list")
@database_option
def list_command(database: str | None) -> None:
    """One line per client: client_id, name, scopes, where its keys come from."""
    with _registry(database) as registry:
        clients = registry.all()
    for client in clients:
        keys = client.jwks_url or f"{len((client.jwks or {}).get('keys', []))} stored key(s)"
        click.echo(f"{client.client_id}\t{client.name}\t{client.scope}\t{keys}\t"
                   f"updated {client.updated}")


@clients_group.command("rotate")
@click.argument("name")
@click.option("--jwks", "jwks", metavar="FILE|URL", help="The new public key set.")
@click.option("--scope", help="New scopes (replace the old ones).")
@database_option
def rotate_command(name: str, jwks: str | None, scope: str | None,
                   database: str | None) -> None:
    """Replace client NAME's keys (key rotation) and/or scopes."""
    from ..auth.registry import RegistryError

    if jwks is None and scope is None:
        raise click.UsageError("give --jwks and/or --scope")
    try:
        with _registry(database) as registry:
            client = registry.change(name, jwks, scope)
    except RegistryError as exc:
        raise _fail(exc) from exc
    click.echo(f"changed {client.name} ({client.client_id}): {client.scope}")


@clients_group.command("remove")
@click.argument("name")
@database_option
def remove_command(name: str, database: str | None) -> None:
    """Remove client NAME (by name or client_id): no new tokens; issued ones expire."""
    from ..auth.registry import RegistryError

    try:
        with _registry(database) as registry:
            client = registry.remove(name)
    except RegistryError as exc:
        raise _fail(exc) from exc
    click.echo(f"removed {client.name} ({client.client_id})")
