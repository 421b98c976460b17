"""Real keys and SMART Backend Services assertions for the authorization tests."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class Key:
    """A private key, its algorithm and key id."""

    private: Any
    alg: str
    kid: str

    def jwks(self) -> dict[str, Any]:
        """The public key set holding this key."""
        public = json.loads(jwt.algorithms.get_default_algorithms()[self.alg].to_jwk(
            self.private.public_key()))
        return {"keys": [{**public, "kid": self.kid, "alg": self.alg, "use": "sig"}]}

    def write(self, folder: Path) -> Path:
        """The public JWKS written to a file."""
        path = folder / f"{self.kid}.jwks.json"
        path.write_text(json.dumps(self.jwks()), encoding="utf-8")
        return path


def rsa_key() -> Key:
    return Key(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS384",
               uuid.uuid4().hex[:8])


def ec_key() -> Key:
    return Key(ec.generate_private_key(ec.SECP384R1()), "ES384", uuid.uuid4().hex[:8])


def assertion(key: Key, client_id: str, aud: str, *, exp: float = 240,
              jti: str | None = None, **claims: Any) -> str:
    """A client assertion as SMART Backend Services asks (override any claim)."""
    now = int(time.time())
    body = {"iss": client_id, "sub": client_id, "aud": aud, "exp": now + int(exp),
            "jti": jti or uuid.uuid4().hex, **claims}
    return jwt.encode(body, key.private, algorithm=key.alg, headers={"kid": key.kid})


def token_form(assertion_jwt: str, scope: str) -> dict[str, str]:
    """The token request's form."""
    return {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion_jwt, "scope": scope}
