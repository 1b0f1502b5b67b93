"""Registry authentication: answering a `WWW-Authenticate` challenge, once for every caller.

A registry that wants credentials answers 401 with a challenge: `Basic realm=...` (send the
username and password with every request) or `Bearer realm=...,service=...,scope=...` (trade
them, or nothing, at the realm for a token; see the distribution token spec). `answer_challenge`
turns a challenge into the `Authorization` header value to send. The registry client uses it for
pull and push requests (and caches the answers) and for `login`, which asks for an identity
(refresh) token. Where credentials come from is distribution.credentials' business.
"""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

from nerdpy.engine.distribution.credentials import Credentials
from nerdpy.engine.errors import AuthError

_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,"]+))')


@dataclass(frozen=True)
class Challenge:
    scheme: str                                 # lower case: "basic", "bearer", or what was sent
    params: dict[str, str] = field(default_factory=dict)
    raw: str = ""


@dataclass(frozen=True)
class Answer:
    scheme: str                                 # "basic" or "bearer"
    authorization: str                          # the Authorization header value
    refresh_token: str | None = None            # a Bearer token server's identity token, if it sent one


class CredentialsRefused(AuthError):
    """The registry or its token server answered 401/403: credentials needed, or refused."""


def parse_challenge(header: str) -> Challenge:
    """`Bearer realm="https://auth/token",service="registry"` -> Challenge("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {k: quoted if quoted or not bare else bare for k, quoted, bare in _PARAM.findall(rest)}
    return Challenge(scheme.lower(), params, header)


def basic_authorization(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def answer_challenge(session, header: str, creds: Credentials | None, *, registry: str, scopes: list[str] = (),
                     extra: dict | None = None, verify=True, timeout=None) -> Answer:
    """The answer to the challenge in `header` with `creds` (None: anonymous). A Bearer token is
    fetched from the realm for `scopes` (plus the `extra` query parameters), by refresh token
    when `creds` has an identity token, else with Basic credentials (when there are any).
    Raises CredentialsRefused when credentials are missing for Basic or the token server
    refuses, AuthError when the challenge or the token server's answer is unusable."""
    import requests

    ch = parse_challenge(header)
    if ch.scheme == "basic":
        if creds is None:
            raise CredentialsRefused(f"registry {registry} requires credentials")
        return Answer("basic", basic_authorization(creds.username, creds.password))
    realm = ch.params.get("realm")
    if ch.scheme != "bearer" or not realm:
        raise AuthError(f"registry {registry} asked for unsupported authentication {header!r}")
    # several scopes (a cross-repository mount also asks to pull the source) repeat the parameter
    query: dict = dict(extra or {})
    if scopes:
        query["scope"] = list(scopes) if len(scopes) > 1 else scopes[0]
    if ch.params.get("service"):
        query["service"] = ch.params["service"]
    try:
        if creds is not None and creds.identity_token:
            query.update({"grant_type": "refresh_token", "refresh_token": creds.identity_token})
            r = session.post(realm, data=query, timeout=timeout, verify=verify)
        else:
            auth = (creds.username, creds.password) if creds is not None else None
            r = session.get(realm, params=query, auth=auth, timeout=timeout, verify=verify)
    except requests.exceptions.RequestException as e:
        raise AuthError(f"cannot get a token from {realm}: {short_error(e)}") from None
    with r:
        if r.status_code in (401, 403):
            raise CredentialsRefused(f"token server {realm} answered {r.status_code}")
        if r.status_code != 200:
            raise AuthError(f"token server {realm} answered {r.status_code}")
        try:
            doc = r.json()
        except ValueError:
            raise AuthError(f"token server {realm} sent invalid JSON") from None
    token = (doc.get("token") or doc.get("access_token")) if isinstance(doc, dict) else None
    if not token or not isinstance(token, str):
        raise AuthError(f"token server {realm} sent no token")
    return Answer("bearer", f"Bearer {token}", doc.get("refresh_token") or None)


def short_error(e: Exception) -> str:
    """The useful part of a requests/urllib3 error ("connection refused", not the repr chain)."""
    text = str(e)
    m = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if m:
        return m.group(1).strip()
    if "Connection refused" in text:
        return "connection refused"
    return text.splitlines()[0][:200] if text else type(e).__name__
