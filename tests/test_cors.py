"""CORS is off by default; an allow-list lets those browser origins call the API."""

from __future__ import annotations

import pytest

from app.settings import Settings, SettingsError

ORIGIN = "https://app.example"


def test_no_cors_headers_by_default(client, admin):
    response = client.get("/api/v1/me", headers={**admin, "Origin": ORIGIN})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = client.options(
        "/api/v1/search", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_listed_origins_get_cors_headers_and_others_do_not(make_app, admin):
    api = make_app(cors_origins=(ORIGIN,)).test_client()
    preflight = api.options(
        "/api/v1/search",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200  # no token needed for a preflight
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    ok = api.get("/api/v1/me", headers={**admin, "Origin": ORIGIN})
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN and "Origin" in ok.headers["Vary"]
    denied = api.get("/api/v1/me", headers={"Origin": ORIGIN})
    assert denied.status_code == 401  # errors are readable by the page too
    assert denied.headers["Access-Control-Allow-Origin"] == ORIGIN
    other = api.get("/api/v1/me", headers={**admin, "Origin": "https://evil.example"})
    assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other.headers


def test_origins_are_validated(tmp_path):
    env = {"POSTRAG_DATA_DIR": str(tmp_path)}
    settings = Settings.from_env(
        {**env, "POSTRAG_CORS_ORIGINS": f"{ORIGIN}/, http://localhost:5173"}
    )
    assert settings.cors_origins == (ORIGIN, "http://localhost:5173")
    with pytest.raises(SettingsError, match="POSTRAG_CORS_ORIGINS"):
        Settings.from_env({**env, "POSTRAG_CORS_ORIGINS": "https://app.example/path"})
