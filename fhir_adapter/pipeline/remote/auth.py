"""Authentication for calls to another FHIR server: a fixed bearer token, or SMART Backend
Services (the SMART App Launch "client-confidential-asymmetric" profile): the token endpoint
is discovered from `<base>/.well-known/smart-configuration`, a JWT assertion signed with the
client's private key (RS384 for RSA keys, ES384 for EC P-384 keys, by PyJWT) is exchanged for
an access token (client_credentials grant), which is reused until shortly before it expires
and fetched anew after a 401."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from .http import RemoteError, json_object

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 300  # seconds: the SMART spec's maximum
REFRESH_MARGIN = 30  # seconds before expiry a token is no longer used


class BearerAuth(requests.auth.AuthBase):
    """Authorization: Bearer <token> on every request."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.token}"
        return r


def discover(http: requests.Session, base: str) -> dict[str, Any]:
    """The server's SMART configuration (`token_endpoint`, supported algorithms...)."""
    url = base.rstrip("/") + "/.well-known/smart-configuration"
    config = json_object(http.get(url, headers={"Accept": "application/json"}),
                         "SMART discovery failed", "SMART discovery")
    if not config.get("token_endpoint"):
        raise RemoteError(f"SMART discovery: {url} names no token_endpoint")
    return config


def load_key(path: Path) -> tuple[Any, str]:
    """The private key in PEM file `path` and the JWS algorithm it signs with."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not an unencrypted PEM private key ({exc})") from exc
    if isinstance(key, rsa.RSAPrivateKey):
        return key, "RS384"
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        return key, "ES384"
    raise ValueError(f"{path}: SMART Backend Services signs with RSA (RS384) or EC P-384 "
                     f"(ES384) keys, not {type(key).__name__}")


@dataclass
class SmartBackendAuth(requests.auth.AuthBase):
    """Bearer tokens from the target's token endpoint, fetched when needed."""

    base: str
    client_id: str
    key_path: Path
    scope: str
    key_id: str | None = None
    http: requests.Session | None = None  # for discovery and tokens: not the authed one
    _token: str | None = field(default=None, repr=False)
    _expires: float = 0.0
    token_endpoint: str | None = None

    def __post_init__(self) -> None:
        self._key, self.algorithm = load_key(self.key_path)

    def assertion(self, audience: str) -> str:
        """The signed client assertion for the token endpoint `audience`."""
        import jwt

        now = int(time.time())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": audience,
                  "exp": now + ASSERTION_LIFETIME, "iat": now, "jti": uuid.uuid4().hex}
        headers = {"typ": "JWT"} | ({"kid": self.key_id} if self.key_id else {})
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers=headers)

    def token(self, fresh: bool = False) -> str:
        """A valid access token (fetched anew when `fresh` or close to expiry)."""
        if self._token and not fresh and time.time() < self._expires - REFRESH_MARGIN:
            return self._token
        http = self.http or requests.Session()
        if self.token_endpoint is None:
            self.token_endpoint = str(discover(http, self.base)["token_endpoint"])
        response = http.post(self.token_endpoint, data={
            "grant_type": "client_credentials", "scope": self.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(self.token_endpoint)},
            headers={"Accept": "application/json"})
        body = json_object(response, "SMART token request refused", "SMART token endpoint")
        if str(body.get("token_type", "")).lower() != "bearer" or not body.get("access_token"):
            raise RemoteError(f"SMART token endpoint {self.token_endpoint} answered no bearer "
                              "access_token")
        self._token = str(body["access_token"])
        self._expires = time.time() + float(body.get("expires_in") or 300)
        return self._token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.token()}"
        r.register_hook("response", self._on_401)
        return r

    def _on_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        """A token revoked or expired early: once, fetch a new one and send again."""
        if response.status_code != 401 or getattr(response.request, "_smart_retried", False):
            return response
        retry = response.request.copy()
        retry._smart_retried = True  # type: ignore[attr-defined]
        retry.headers["Authorization"] = f"Bearer {self.token(fresh=True)}"
        response.content  # noqa: B018 (read it: the connection goes back to the pool)
        return response.connection.send(retry, **kwargs)  # type: ignore[attr-defined]
