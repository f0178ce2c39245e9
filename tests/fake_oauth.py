"""An in-process OAuth 2.0 token endpoint on 127.0.0.1 with rotating refresh tokens.

POST /token with grant_type=refresh_token: a known refresh token is spent (it never works again,
as with Atlassian's rotating tokens) and a new access and refresh token come back. A spent or
unknown one answers 400 invalid_grant. `delay_s` holds each answer, to widen races; `override`
(status, JSON body) answers every request with that instead. Subclasses add the
authorization_code grant (`code_grant`) and GET endpoints (`get`); tokens given out are in
`access` (access tokens) and `valid` (unspent refresh tokens).
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from tests.fakes import LoopbackServer, QuietHandler, send_json


class FakeOAuthServer(LoopbackServer):
    def __init__(self, client_id: str = "postrag", client_secret: str = "s3cret") -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.valid: set[str] = set()
        self.access: set[str] = set()
        self.grants = 0
        self.rejected = 0
        self.delay_s = 0.0
        self.expires_in = 3600
        self.scope = "read:jira-work offline_access"
        self.override: tuple[int, Any] | None = None
        self._lock = threading.Lock()
        server = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                time.sleep(server.delay_s)
                send_json(self, *server.answer(form))

            def do_GET(self) -> None:  # noqa: N802
                server.get(self)

        self.base = self._listen(Handler)
        self.url = self.base + "/token"

    def get(self, handler: BaseHTTPRequestHandler) -> None:
        send_json(handler, 404, {"error": "not_found"})

    def answer(self, form: dict[str, str]) -> tuple[int, Any]:
        if self.override is not None:
            return self.override
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") == "authorization_code":
            return self.code_grant(form)
        if form.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            token = form.get("refresh_token", "")
            if token not in self.valid:
                self.rejected += 1
                return 400, {"error": "invalid_grant", "error_description": "token spent"}
            self.valid.discard(token)
            return self.issue()

    def code_grant(self, form: dict[str, str]) -> tuple[int, Any]:
        return 400, {"error": "unsupported_grant_type"}

    def issue(self) -> tuple[int, Any]:
        """A new access and refresh token (the caller holds the lock)."""
        self.grants += 1
        fresh, access = f"rt-{self.grants}", f"at-{self.grants}"
        self.valid.add(fresh)
        self.access.add(access)
        return 200, {
            "access_token": access,
            "refresh_token": fresh,
            "expires_in": self.expires_in,
            "token_type": "Bearer",
            "scope": self.scope,
        }
