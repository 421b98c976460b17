"""The authorization server's own tables, beside the store's in the same database (so every
gateway worker and host sharing the store shares clients, replay protection and the audit):

auth_clients   registered backend clients: scopes and public keys (a JWKS, or its URL)
auth_jti       assertion ids already used, until they expire (replay protection)
auth_secrets   the server's token-signing secret, made once per database
audit_events   one row per request and per token issued or refused (AuditEvent)
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()
SEQ = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only

clients = Table(
    "auth_clients", metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("scope", Text, nullable=False),
    Column("jwks", Text),  # the key set itself (from a file)
    Column("jwks_url", Text),  # or where to fetch it (fetched again on an unknown kid)
    Column("created", String(40), nullable=False),
    Column("updated", String(40), nullable=False),
)

used_jti = Table(
    "auth_jti", metadata,
    Column("client_id", String(64), primary_key=True),
    Column("jti", String(255), primary_key=True),
    Column("expires", Float, nullable=False),
)

secrets = Table(
    "auth_secrets", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

audit_events = Table(
    "audit_events", metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("recorded", String(40), nullable=False),  # FHIR instant, UTC: sorts as text
    Column("kind", String(16), nullable=False),  # rest | token
    Column("client_id", String(255), nullable=False),  # '' when no client was established
    Column("method", String(16), nullable=False),
    Column("path", Text, nullable=False),
    Column("query", Text, nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("detail", Text, nullable=False),
    Column("request_id", String(128), nullable=False),
)
Index("audit_events_client", audit_events.c.client_id, audit_events.c.recorded)
Index("audit_events_recorded", audit_events.c.recorded)


def create_tables(engine: Engine) -> None:
    """Create the tables that do not exist yet (idempotent; several processes may race)."""
    with engine.connect().execution_options(fhir_write=True) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4242020)")
        metadata.create_all(conn, checkfirst=True)
