"""An in-process Atlassian Cloud OAuth 2.0 (3LO) on 127.0.0.1, in Atlassian's shapes.

- GET /authorize (audience=api.atlassian.com, client_id, scope, redirect_uri, state,
  response_type=code, prompt=consent, code_challenge, code_challenge_method=S256): the user
  consents at once (or refuses, with `deny`) and is sent back to redirect_uri with code and
  state (or error=access_denied and state). A request it cannot accept answers 400.
- POST /oauth/token: authorization_code (the code once, with its redirect_uri and the verifier
  of its challenge) and refresh_token (rotating) grants, as FakeOAuthServer.
- GET /oauth/token/accessible-resources: the `sites` for a current access token, else 401.
- GET /me (the user identity API): `me`, the token's account, for a current access token (403
  when `me` is None, as for a token without the read:me scope), else 401.
"""

from __future__ import annotations

import base64
import hashlib
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.fake_oauth import FakeOAuthServer
from tests.fakes import send_json

SITES = [
    {
        "id": "1324a887-45db-1bf4-1e99-ef0ff456d421",
        "name": "acme",
        "url": "https://acme.atlassian.net",
        "scopes": ["read:confluence-content.all", "read:jira-work"],
        "avatarUrl": "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/x.png",
    }
]


def challenge_of(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


class FakeAtlassian(FakeOAuthServer):
    def __init__(self) -> None:
        super().__init__(client_id="atl-client", client_secret="atl-s3cret")
        self.scope = "read:confluence-content.all read:jira-work offline_access"
        self.codes: dict[str, tuple[str, str]] = {}  # code -> (redirect_uri, challenge)
        self.authorize_queries: list[dict[str, str]] = []
        self.deny = False
        self.sites: Any = SITES
        self.token_url = self.base + "/oauth/token"
        self.authorize_url = self.base + "/authorize"
        self.resources_url = self.base + "/oauth/token/accessible-resources"
        self.me_url = self.base + "/me"
        self.me: Any = {
            "account_type": "atlassian",
            "account_id": "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077",
            "email": "ada@example.com",
            "name": "Ada",
        }

    def get(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/authorize":
            self._authorize(handler, query)
        elif parts.path in ("/oauth/token/accessible-resources", "/me"):
            bearer = handler.headers.get("Authorization", "").removeprefix("Bearer ")
            answer = self.sites if parts.path != "/me" else self.me
            if bearer not in self.access:
                send_json(handler, 401, {"code": 401, "message": "Unauthorized"})
            elif answer is None:
                send_json(handler, 403, {"code": 403, "message": "scope does not match"})
            else:
                send_json(handler, 200, answer)
        else:
            send_json(handler, 404, {"code": 404, "message": "Not Found"})

    def _authorize(self, handler: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        self.authorize_queries.append(query)
        expected = {
            "audience": "api.atlassian.com",
            "client_id": self.client_id,
            "response_type": "code",
            "code_challenge_method": "S256",
        }
        wrong = [k for k, v in expected.items() if query.get(k) != v]
        if wrong or not query.get("redirect_uri") or not query.get("code_challenge"):
            send_json(handler, 400, {"error": "invalid_request", "wrong": wrong})
            return
        back: dict[str, str] = {"state": query.get("state", "")}
        if self.deny:
            back["error"] = "access_denied"
        else:
            with self._lock:
                code = f"code-{len(self.codes) + 1}"
                self.codes[code] = (query["redirect_uri"], query["code_challenge"])
            back["code"] = code
        handler.send_response(302)
        handler.send_header("Location", f"{query['redirect_uri']}?{urlencode(back)}")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def code_grant(self, form: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            bound = self.codes.pop(form.get("code", ""), None)  # a code works once
            if bound is None:
                return 403, {"error": "invalid_grant", "error_description": "Invalid code"}
            redirect_uri, challenge = bound
            if form.get("redirect_uri") != redirect_uri:
                return 403, {"error": "invalid_grant", "error_description": "redirect_uri"}
            if challenge_of(form.get("code_verifier", "")) != challenge:
                return 403, {"error": "invalid_grant", "error_description": "code_verifier"}
            return self.issue()
