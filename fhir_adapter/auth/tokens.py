"""Access tokens: the token endpoint's checks (SMART Backend Services: a client_credentials
grant authenticated by a signed JWT assertion) and the bearer-token check of every request,
for our own tokens and those of a configured external issuer (Keycloak, Entra ID, Okta).

A verified token is cached by its SHA-256 until it expires, so a client's requests pay for
its signature once. A removed client's tokens stay valid until they expire (TOKEN_LIFETIME).
"""

from __future__ import annotations

import hashlib
import secrets as random
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from .registry import ALGORITHMS, Registry, RegistryError
from .scopes import Grant, granted
from .tables import secrets, used_jti

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_LIFETIME = 300  # seconds: short-lived, as SMART Backend Services recommends
MAX_ASSERTION_LIFETIME = 300  # exp at most 5 minutes ahead (SMART Backend Services)
ISSUER = "fhir-adapter"
_OWN_ALGORITHM = "HS256"  # our tokens: verified by us alone, with a secret in the database
_EXTERNAL_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256",
                        "PS384", "PS512"]
_LEEWAY = 30  # seconds of clock difference tolerated on exp/nbf/iat


class TokenError(Exception):
    """An OAuth error (RFC 6749 5.2): `error` code and a description for the client."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


@dataclass(frozen=True)
class Principal:
    """Who a request acts for, and what it may do."""

    client_id: str
    grant: Grant
    expires: float  # epoch seconds


@dataclass(frozen=True)
class External:
    """An external issuer whose tokens are accepted."""

    issuer: str
    jwks_url: str
    audience: str


def server_secret(engine: Engine) -> bytes:
    """The database's token-signing secret, made by the first process that needs it."""
    with engine.connect().execution_options(fhir_write=True) as conn, conn.begin():
        row = conn.execute(select(secrets.c.value).where(secrets.c.name == "token")).first()
        if row is None:
            value = random.token_hex(32)
            conn.execute(insert(secrets).values(name="token", value=value))
            return value.encode()
    return row[0].encode()


class Tokens:
    """Issues and verifies access tokens for one database."""

    def __init__(self, registry: Registry, external: External | None = None) -> None:
        self.registry = registry
        self.engine = registry.engine
        self._secret = server_secret(self.engine)
        self._external = external
        self._jwks_client = (jwt.PyJWKClient(external.jwks_url, cache_keys=True, lifespan=3600)
                             if external else None)
        self._cache: dict[bytes, Principal] = {}
        self._lock = threading.Lock()

    # -- the token endpoint ---------------------------------------------------------------

    def issue(self, form: dict[str, str], token_url: str) -> tuple[str, dict[str, Any]]:
        """(client_id, token response) for a token request's form fields; TokenError when
        the request is refused. `token_url` is this endpoint's URL, the assertion's aud."""
        if form.get("grant_type") != "client_credentials":
            raise TokenError("unsupported_grant_type", "grant_type must be client_credentials")
        if form.get("client_assertion_type") != JWT_BEARER:
            raise TokenError("invalid_request", f"client_assertion_type must be {JWT_BEARER}")
        assertion = form.get("client_assertion") or ""
        if not assertion:
            raise TokenError("invalid_request", "client_assertion is missing")
        requested = form.get("scope") or ""
        if not requested.strip():
            raise TokenError("invalid_scope", "scope is required (e.g. system/Patient.rs)")
        claims = self._assertion(assertion, token_url)
        client_id = claims["iss"]
        client = self.registry.get(client_id)
        assert client is not None  # _assertion checked
        scope = granted(requested, client.scope)
        if not scope:
            raise TokenError("invalid_scope", f"none of the scopes asked for ({requested}) is "
                             "registered for this client", 400)
        self._spend(client_id, str(claims["jti"]), float(claims["exp"]))
        now = int(time.time())
        token = jwt.encode({"iss": ISSUER, "sub": client_id, "scope": scope, "iat": now,
                            "exp": now + TOKEN_LIFETIME, "jti": uuid.uuid4().hex},
                           self._secret, algorithm=_OWN_ALGORITHM)
        return client_id, {"access_token": token, "token_type": "bearer",
                           "expires_in": TOKEN_LIFETIME, "scope": scope}

    def _assertion(self, assertion: str, token_url: str) -> dict[str, Any]:
        """The assertion's claims, once its signature, audience, times and issuer hold."""
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise TokenError("invalid_client", f"client_assertion is not a JWT ({exc})") from exc
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise TokenError("invalid_client", f"client_assertion alg {alg!r} is not accepted "
                             f"(use {' or '.join(ALGORITHMS)})")
        client_id = unverified.get("iss")
        if not isinstance(client_id, str) or unverified.get("sub") != client_id:
            raise TokenError("invalid_client", "client_assertion iss and sub must both be the "
                             "client_id")
        client = self.registry.get(client_id)
        if client is None:
            raise TokenError("invalid_client", f"client {client_id!r} is not registered")
        try:
            keys = self.registry.key_set(client, header.get("kid"))
        except RegistryError as exc:
            raise TokenError("invalid_client", f"the client's keys cannot be loaded ({exc})"
                             ) from exc
        candidates = [k for k in keys["keys"]
                      if (header.get("kid") is None or k.get("kid") == header.get("kid"))
                      and k.get("alg") in (None, alg)
                      and k.get("kty") == ("RSA" if alg.startswith("RS") else "EC")]
        if not candidates:
            raise TokenError("invalid_client", "no registered key of this client matches the "
                             f"assertion (kid {header.get('kid')!r}, alg {alg})")
        last: Exception | None = None
        for key in candidates:
            try:
                claims = jwt.decode(
                    assertion, jwt.PyJWK(key, alg).key, algorithms=[alg], audience=token_url,
                    issuer=client_id, leeway=_LEEWAY,
                    options={"require": ["iss", "sub", "aud", "exp", "jti"]})
                break
            except jwt.InvalidSignatureError as exc:
                last = exc
            except jwt.PyJWTError as exc:
                raise TokenError("invalid_client", f"client_assertion refused: {exc}") from exc
        else:
            raise TokenError("invalid_client", "client_assertion signature does not verify "
                             f"with the client's registered keys ({last})")
        if float(claims["exp"]) > time.time() + MAX_ASSERTION_LIFETIME + _LEEWAY:
            raise TokenError("invalid_client", "client_assertion exp is more than 5 minutes "
                             "ahead")
        return claims

    def _spend(self, client_id: str, jti: str, exp: float) -> None:
        """Record a jti; refuse one already used (within its lifetime, which bounds the
        table: expired ids are purged here, a replay of them fails on exp)."""
        now = time.time()
        try:
            with self.engine.connect().execution_options(fhir_write=True) as conn, \
                    conn.begin():
                conn.execute(delete(used_jti).where(used_jti.c.expires < now - _LEEWAY))
                conn.execute(insert(used_jti).values(client_id=client_id, jti=jti,
                                                     expires=exp + _LEEWAY))
        except IntegrityError as exc:
            raise TokenError("invalid_client", "client_assertion jti was already used") from exc

    # -- bearer tokens ----------------------------------------------------------------------

    def verify(self, token: str) -> Principal:
        """The principal of a bearer token; TokenError (invalid_token) when it is not valid."""
        key = hashlib.sha256(token.encode()).digest()
        found = self._cache.get(key)
        now = time.time()
        if found is not None and found.expires > now:
            return found
        principal = self._verified(token)
        with self._lock:
            if len(self._cache) >= 10_000:  # bounded: drop the expired, else start over
                live = {k: p for k, p in self._cache.items() if p.expires > now}
                self._cache = live if len(live) < 10_000 else {}
            self._cache[key] = principal
        return principal

    def _verified(self, token: str) -> Principal:
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise TokenError("invalid_token", f"not a JWT ({exc})", 401) from exc
        external = self._external
        try:
            if external is not None and unverified.get("iss") == external.issuer:
                assert self._jwks_client is not None
                signing = self._jwks_client.get_signing_key_from_jwt(token)
                claims = jwt.decode(token, signing.key, algorithms=_EXTERNAL_ALGORITHMS,
                                    audience=external.audience, issuer=external.issuer,
                                    leeway=_LEEWAY, options={"require": ["exp", "iss"]})
                return _external_principal(claims)
            claims = jwt.decode(token, self._secret, algorithms=[_OWN_ALGORITHM],
                                issuer=ISSUER, options={"require": ["exp", "sub", "iss"]})
        except jwt.PyJWTError as exc:
            raise TokenError("invalid_token", f"token refused: {exc}", 401) from exc
        return Principal(claims["sub"], Grant.of(str(claims.get("scope", "")).split()),
                         float(claims["exp"]))


def _external_principal(claims: dict[str, Any]) -> Principal:
    scope = claims.get("scope", claims.get("scp", ""))
    scopes = scope.split() if isinstance(scope, str) else [str(s) for s in scope]
    who = next((str(claims[n]) for n in ("client_id", "azp", "appid", "sub") if claims.get(n)),
               "")
    return Principal(f"{claims['iss']}#{who}", Grant.of(scopes), float(claims["exp"]))
