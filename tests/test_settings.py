"""Settings come from the environment once; a bad value names its variable."""

import dataclasses

import pytest

from app.settings import Settings, SettingsError


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
