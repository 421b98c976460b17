"""Authorization for the gateway: SMART Backend Services (client credentials with a signed
JWT assertion, SMART v1/v2 `system/` scopes), external token issuers, the audit trail and
per-client rate limits. Turned on by `fhir-adapter serve --auth smart` or
FHIR_ADAPTER_AUTH=smart.

    scopes.py     parse scopes; Grant.can(type, action)
    registry.py   registered clients and their keys (table auth_clients)
    tokens.py     the token endpoint's checks; bearer-token verification (cached by hash)
    access.py     the current request's principal; require() used by every interaction
    audit.py      AuditEvent rows, written in batches
    ratelimit.py  429 + Retry-After per client

How a request is checked (gateway/security.py, one function for every request, whatever
path answers it): the `Guard` WSGI middleware sits outside both the fast path and Flask; it
verifies the bearer token (401 + WWW-Authenticate without a valid one), applies the rate
limit, makes the principal current (access.enter) for the interactions' `require` checks
(403 OperationOutcome), adds CORS and security headers, and records the AuditEvent.

Hook for other blueprints (a dashboard, say) that must show nothing without authorization:

    from fhir_adapter.gateway.security import auth_enabled, authorize
    auth_enabled(current_app)           # is --auth smart on?
    principal = authorize(current_app, request.headers.get("Authorization"))
        # the Principal (access.UNRESTRICTED when auth is off); raises access.Unauthorized
        # (401) without a valid token; principal.grant.can("ResearchStudy", "r") to check
    access.current()                    # inside a request the guard already let through

With auth on, the guard refuses (401) every path without a valid token, inside /fhir and
outside it (a dashboard blueprint included), except `metadata`, `.well-known/
smart-configuration`, the token endpoint and CORS preflights (security.OPEN_PATHS): a new
blueprint is closed by default. Inside its views, `access.current()` is the caller and
`access.require(type, action)` raises the 403; `authorize()` is for code outside a request
the guard saw (a websocket, a background check).
"""
