"""Property-based tests of the whole HTTP API with schemathesis, from /openapi.json.

A live server on 127.0.0.1 (the fake LLM and OAuth servers behind it, a secret key set) gets
bounded generated requests for every operation: no response may be a 500 (an upstream model
nobody serves may give its documented 502/503/504), and every response must match the documented
status codes, content types and schemas.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import OAuthClient
from tests.fake_oauth import FakeOAuthServer
from tests.helpers import live_server

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
ROOT = Path(__file__).resolve().parent.parent
# Upstream failures are documented 502/503/504 answers (the fuzzer registers models nobody
# serves); a 500 is documented nowhere, so status_code_conformance catches every one.
CHECKS = "status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.fixture
def live_url(make_app, llm):
    with FakeOAuthServer() as oauth:
        app = make_app(
            llm="ollama",
            ollama_url=llm.url,
            openai_base_url=f"{llm.url}/v1",
            chat_model="fake-chat",
            llm_timeout_s=5,
            secret_key="fuzz-" + "0123456789abcdefghijklmnopqrstuvwxyz",
            oauth_clients=(OAuthClient("jira", oauth.url, "postrag", "s3cret"),),
        )
        with live_server(app) as base:
            yield base


def test_generated_requests_get_no_server_error_and_match_the_schema(live_url, admin_token):
    result = subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"{live_url}/openapi.json",
            "-H",
            f"Authorization: Bearer {admin_token}",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "15",
            "--max-time",
            "35",
            "--workers",
            "2",
            "--seed",
            "20261123",
            "--request-timeout",
            "30",
            # Revoking the token the run authenticates with would leave only 401s to test.
            "--exclude-name",
            "DELETE /api/v1/tokens/{token_id}",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,  # so that the hooks module imports
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
            "PYTHONPATH": str(ROOT),
        },
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "[500]" not in result.stdout
    tested = int(result.stdout.split("Tested:", 1)[1].split()[0])
    assert tested >= 45  # every operation but the one excluded was exercised
