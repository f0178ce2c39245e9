"""bench/load.py end to end, briefly: a clean run passes, a run whose chats fail exits 1."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHORT = ["--users", "4", "--accounts", "1", "--wait", "0.05,0.2"]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("locust") is None, reason="locust is not installed (extra: bench)"
)


def start_load(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if os.environ.get("TEST_DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["TEST_DATABASE_URL"]  # a fresh database on it
    return subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "load.py"), *SHORT, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_load_passes_a_clean_run_and_fails_a_run_whose_chats_fail():
    # Side by side: each run is mostly waiting for its own server to start.
    clean = start_load("--seed-docs", "1", "--duration", "30", "--max-requests", "40")
    failing = start_load(
        *("--seed-docs", "0", "--duration", "3", "--max-requests", "1000"),
        *("--llm-fail-status", "503", "--weights", "chat=20"),
    )
    clean_out, _ = clean.communicate(timeout=120)
    failing_out, _ = failing.communicate(timeout=120)

    assert clean.returncode == 0, clean_out
    assert "stopped by the request budget (40)" in clean_out
    assert "| POST /api/v1/search [hybrid] |" in clean_out
    assert "- checks: all passed" in clean_out

    assert failing.returncode == 1, failing_out
    assert "stopped by the duration (3 s)" in failing_out
    assert "- checks: FAILED" in failing_out
    assert "failed requests: POST /api/v1/chats/{id}/messages" in failing_out
    assert "answered 503: upstream failure" in failing_out
