"""Settings come from the environment once; a bad value names its variable."""

import dataclasses
import re
from pathlib import Path

import pytest

from app.settings import OAUTH_VARIABLES, VARS, Settings, SettingsError, Var
from app.settings_vars import VAR, Integer, Number

README = Path(__file__).resolve().parent.parent / "README.md"


def test_defaults_need_no_environment(tmp_path):
    settings = Settings.from_env({"POSTRAG_DATA_DIR": str(tmp_path)})
    assert settings.database_url is None
    assert settings.data_dir == tmp_path
    assert settings.migrate_on_start is True
    assert (settings.migrations_dir / "V1_1__extensions_users_tokens.sql").exists()
    assert (settings.hnsw_ef_search, settings.exact_search_max_rows) == (128, 2000)
    assert (settings.bm25_k1, settings.bm25_b, settings.index_build_memory) == (0.9, 0.4, "1GB")
    assert (settings.llm, settings.chat_model) == ("auto", "")
    assert (settings.rate_limit_per_minute, settings.llm_tokens_per_day) == (600, 0)
    assert settings.cors_origins == () and settings.secret_key is None


def test_llm_is_ollama_when_one_answers_or_its_url_is_set(tmp_path):
    from app import resolve_llm
    from tests.fake_llm import FakeLLMServer

    env = {"POSTRAG_DATA_DIR": str(tmp_path)}
    assert Settings.from_env({**env, "OLLAMA_URL": "http://10.0.0.9:11434"}).llm == "ollama"
    assert Settings.from_env({**env, "POSTRAG_LLM": "none", "OLLAMA_URL": "http://x"}).llm == "none"
    with FakeLLMServer() as fake:
        found = Settings.from_env(env)
        assert resolve_llm(dataclasses.replace(found, ollama_url=fake.url)) == "ollama"
    nobody = Settings.from_env(env)  # the fake is gone: nothing answers on its port
    assert resolve_llm(dataclasses.replace(nobody, ollama_url=fake.url)) == "none"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"POSTRAG_POOL_MAX_SIZE": "lots"}, "POSTRAG_POOL_MAX_SIZE"),
        ({"POSTRAG_POOL_MIN_SIZE": "-1"}, "POSTRAG_POOL_MIN_SIZE"),
        ({"POSTRAG_POOL_MIN_SIZE": "5", "POSTRAG_POOL_MAX_SIZE": "2"}, "POSTRAG_POOL_MAX_SIZE"),
        ({"POSTRAG_MIGRATE_ON_START": "maybe"}, "POSTRAG_MIGRATE_ON_START"),
        ({"POSTRAG_LOG_LEVEL": "LOUD"}, "POSTRAG_LOG_LEVEL"),
        ({"POSTRAG_MIGRATIONS_DIR": "/nonexistent"}, "POSTRAG_MIGRATIONS_DIR"),
        ({"POSTRAG_HNSW_EF_SEARCH": "0"}, "POSTRAG_HNSW_EF_SEARCH"),
        ({"POSTRAG_HNSW_EF_SEARCH": "1001"}, "POSTRAG_HNSW_EF_SEARCH"),
        ({"POSTRAG_EXACT_SEARCH_MAX_ROWS": "-5"}, "POSTRAG_EXACT_SEARCH_MAX_ROWS"),
        ({"POSTRAG_BM25_K1": "nan"}, "POSTRAG_BM25_K1"),
        ({"POSTRAG_BM25_B": "1.5"}, "POSTRAG_BM25_B"),
        ({"POSTRAG_BM25_B": "half"}, "POSTRAG_BM25_B"),
        ({"POSTRAG_INDEX_BUILD_MEMORY": "1GB; DROP"}, "POSTRAG_INDEX_BUILD_MEMORY"),
        ({"POSTRAG_INDEX_BUILD_MEMORY": "2TB"}, "POSTRAG_INDEX_BUILD_MEMORY"),
        ({"POSTRAG_LLM": "gpt"}, "POSTRAG_LLM"),
        ({"POSTRAG_RATE_LIMIT_PER_MINUTE": "-1"}, "POSTRAG_RATE_LIMIT_PER_MINUTE"),
        ({"POSTRAG_LLM_TOKENS_PER_DAY": "lots"}, "POSTRAG_LLM_TOKENS_PER_DAY"),
        ({"POSTRAG_CORS_ORIGINS": "app.example"}, "POSTRAG_CORS_ORIGINS"),
        ({"POSTRAG_OAUTH_TOKEN_URL__JIRA": "ftp://x"}, "POSTRAG_OAUTH_TOKEN_URL__JIRA"),
        ({"POSTRAG_OAUTH_TOKEN_URL__JIRA": "https://x/token"}, "POSTRAG_OAUTH_CLIENT_ID__JIRA"),
        ({"POSTRAG_OAUTH_TOKEN_URL__9X": "https://x/token"}, "POSTRAG_OAUTH_TOKEN_URL__9X"),
        ({"POSTRAG_LLM_TIMEOUT_S": "0"}, "POSTRAG_LLM_TIMEOUT_S"),
        ({"POSTRAG_CHAT_CONTEXT_TOKENS": "100"}, "POSTRAG_CHAT_CONTEXT_TOKENS"),
        ({"POSTRAG_CHAT_ANSWER_TOKENS": "5000"}, "POSTRAG_CHAT_ANSWER_TOKENS"),
        ({"POSTRAG_OIDC_ISSUER": "https://idp.example/realms/a"}, "POSTRAG_OIDC_AUDIENCE"),
        ({"POSTRAG_OIDC_AUDIENCE": "postrag"}, "POSTRAG_OIDC_ISSUER"),
        (
            {"POSTRAG_OIDC_ISSUER": "http://idp.example/realms/a", "POSTRAG_OIDC_AUDIENCE": "p"},
            "POSTRAG_OIDC_ISSUER",
        ),
        (
            {"POSTRAG_OIDC_ISSUER": "https://idp.example/?realm=a", "POSTRAG_OIDC_AUDIENCE": "p"},
            "POSTRAG_OIDC_ISSUER",
        ),
        (
            {
                "POSTRAG_OIDC_ISSUER": "https://idp.example/" + "a" * 2000,
                "POSTRAG_OIDC_AUDIENCE": "p",
            },
            "POSTRAG_OIDC_ISSUER",
        ),
    ],
)
def test_bad_values_fail_naming_the_variable(env, name):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)


def test_a_bad_setting_stops_the_cli_naming_the_variable(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "POSTRAG_DATA_DIR": str(tmp_path), "POSTRAG_POOL_MAX_SIZE": "lots"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "postrag"), "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "POSTRAG_POOL_MAX_SIZE must be an integer" in result.stderr
    assert "Traceback" not in result.stderr


def test_oauth_clients_and_keys_come_from_the_environment(tmp_path):
    settings = Settings.from_env(
        {
            "POSTRAG_DATA_DIR": str(tmp_path),
            "POSTRAG_OAUTH_TOKEN_URL__JIRA": "https://auth.atlassian.com/oauth/token",
            "POSTRAG_OAUTH_CLIENT_ID__JIRA": "abc",
            "POSTRAG_OAUTH_CLIENT_SECRET__JIRA": "def",
            "POSTRAG_SECRET_KEY": "x" * 40,
            "POSTRAG_OLD_SECRET_KEYS": " old1 , old2 ,",
        }
    )
    (client,) = settings.oauth_clients
    assert (client.provider, client.client_id, client.client_secret) == ("jira", "abc", "def")
    assert settings.old_secret_keys == ("old1", "old2")


@pytest.mark.parametrize(
    "issuer",
    ["https://idp.example/realms/team", "https://login.example/t/v2.0/", "http://127.0.0.1:8080/r"],
)
def test_an_oidc_issuer_is_read_with_its_audience(issuer):
    env = {"POSTRAG_OIDC_ISSUER": issuer, "POSTRAG_OIDC_AUDIENCE": "postrag"}
    settings = Settings.from_env(env)
    assert (settings.oidc_issuer, settings.oidc_audience) == (issuer, "postrag")


def _readme_table() -> dict[str, str]:
    """Variable -> default cell of the README's configuration table (`A` / `B` rows split)."""
    section = README.read_text().split("\n## Configuration\n")[1].split("\n## ")[0]
    table = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            names_cell, default_cell, _meaning = (c.strip() for c in line.strip("|").split("|"))
            names = re.findall(r"`([A-Z][A-Z0-9_]*(?:<[A-Z]+>)?)`", names_cell)
            split = " / " in names_cell
            defaults = default_cell.split(" / ") if split else [default_cell] * len(names)
            table.update(zip(names, defaults, strict=True))
    return table


def _documents(cell: str, var: Var) -> bool:
    """The README's default cell says the declared default (unset ones: empty or "unset...")."""
    if var.default == "":
        return cell == "" or cell.startswith("unset")
    return cell.startswith(f"`{var.default}`")


def test_every_declared_variable_is_in_the_readme_with_its_default():
    table = _readme_table()
    for var in VARS:
        assert var.name in table, f"{var.name} is not in the README's configuration table"
        assert _documents(table[var.name], var), (var.name, table[var.name], var.default)
    listed = {name for name in table if name.startswith("POSTRAG_") and "<" not in name}
    assert listed - {var.name for var in VARS} == set(), "listed in the README, never read"
    per_provider = {name.removesuffix("<PROVIDER>") for name in table if "<" in name}
    assert per_provider == set(OAUTH_VARIABLES)


def test_settings_built_directly_have_the_defaults_of_an_empty_environment():
    loaded = Settings.from_env({})
    built = Settings(
        database_url=None, data_dir=loaded.data_dir, migrations_dir=loaded.migrations_dir
    )
    assert built == loaded


@pytest.mark.parametrize("var", VARS, ids=lambda var: var.name)
def test_an_empty_variable_means_its_default(var):
    assert Settings.from_env({var.name: ""}) == Settings.from_env({})


_BOUNDED = [var for var in VARS if isinstance(var.parse, Integer | Number)]


@pytest.mark.parametrize("var", _BOUNDED, ids=lambda var: var.name)
def test_values_outside_a_declared_range_fail_naming_the_variable(var):
    step = 1 if isinstance(var.parse, Integer) else 0.5
    outside = [var.parse.low - step] + ([] if var.parse.high is None else [var.parse.high + step])
    for value in outside:
        with pytest.raises(SettingsError, match=f"^{var.name} must be"):
            Settings.from_env({var.name: str(value)})


@pytest.mark.parametrize(
    "name",
    [
        "POSTRAG_HNSW_EF_SEARCH",
        "POSTRAG_BM25_B",
        "POSTRAG_MAX_UPLOAD_MB",
        "POSTRAG_EXTRACTION_MEMORY_MB",
    ],
)
def test_the_declared_bounds_themselves_are_accepted(name):
    (var,) = [var for var in VARS if var.name == name]
    fields = {
        f.metadata[VAR].name: f.name for f in dataclasses.fields(Settings) if VAR in f.metadata
    }
    bounds = [var.parse.low, var.parse.high] + ([0] if getattr(var.parse, "or_zero", False) else [])
    for bound in (b for b in bounds if b is not None):
        settings = Settings.from_env({name: str(bound)})
        assert getattr(settings, fields[name]) == bound * getattr(var.parse, "unit", 1)
