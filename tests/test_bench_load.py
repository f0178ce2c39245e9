"""bench/load.py end to end, briefly: a clean run passes, a run whose chats fail exits 1."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHORT = ["--users", "4", "--accounts", "1", "--wait", "0.05,0.2"]


def start_load(server_url: str, *args: str) -> subprocess.Popen[str]:
    # A fresh database on the tests' server (load.py drops it at the end): no initdb per run.
    env = {**os.environ, "DATABASE_URL": server_url}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "load.py"), *SHORT, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_load_passes_a_clean_run_and_fails_a_run_whose_chats_fail(server_url):
    # Side by side: each run is mostly waiting for its own server to start.
    clean = start_load(server_url, "--seed-docs", "1", "--duration", "30", "--max-requests", "40")
    failing = start_load(
        server_url,
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
