"""Bearer-token auth (tokens are looked up hashed, through the store) and the per-token rate limit."""

from __future__ import annotations

import hashlib

from flask import g, request

from api.errors import ApiError
from store.tokens import get_or_create_user, verify_token

LOCAL_USER = "local"  # everyone, when TRAINYARD_AUTH is off


def _unauthorized(detail: str) -> ApiError:
    return ApiError(401, detail, kind="unauthorized", headers={"WWW-Authenticate": 'Bearer realm="trainyard"'})


def authenticate() -> None:
    """Set `g.user_id` from the request's bearer token (401 otherwise), then apply the token's rate limit (429)."""
    from api.context import session, state

    st = state()
    if not st.settings.auth:
        g.user_id = st.tokens.get(LOCAL_USER) or _local_user_id()
        st.tokens.put(LOCAL_USER, g.user_id)
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("send 'Authorization: Bearer TOKEN' (trainyard token create --user NAME makes one)")
    digest = hashlib.sha256(token.encode()).hexdigest()
    g.token = token  # an event stream re-checks it while open (api.results)
    g.user_id = st.tokens.get(digest)
    if g.user_id is None:
        user = verify_token(session=session(), token=token)
        if user is None:
            raise _unauthorized("the token is unknown or revoked")
        st.tokens.put(digest, user.id)
        g.user_id = user.id
    wait = st.limiter.allow(digest)
    if wait > 0:
        raise ApiError(429, f"over the rate limit of {st.settings.rate_limit_per_second:g} requests per second per "
                            f"token (rate_limit_per_second; bursts of {st.settings.rate_limit_burst}, "
                            f"rate_limit_burst); retry in {wait:.2f} s",
                       kind="rate-limited", headers={"Retry-After": str(max(1, round(wait + 0.5)))})


def _local_user_id() -> str:
    from api.context import writing

    with writing() as db:
        return get_or_create_user(session=db, name=LOCAL_USER).id


def user_id() -> str:
    """The authenticated caller's user id."""
    return g.user_id
