"""Settings come from the environment once; a bad value names its variable."""

import pytest

from app.settings import Settings, SettingsError


def test_defaults_need_no_environment(tmp_path):
    settings = Settings.from_env({"POSTRAG_DATA_DIR": str(tmp_path)})
    assert settings.database_url is None
    assert settings.data_dir == tmp_path
    assert settings.migrate_on_start is True
    assert (settings.migrations_dir / "V1_1__extensions_users_tokens.sql").exists()


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"POSTRAG_POOL_MAX_SIZE": "lots"}, "POSTRAG_POOL_MAX_SIZE"),
        ({"POSTRAG_POOL_MIN_SIZE": "-1"}, "POSTRAG_POOL_MIN_SIZE"),
        ({"POSTRAG_POOL_MIN_SIZE": "5", "POSTRAG_POOL_MAX_SIZE": "2"}, "POSTRAG_POOL_MAX_SIZE"),
        ({"POSTRAG_MIGRATE_ON_START": "maybe"}, "POSTRAG_MIGRATE_ON_START"),
        ({"POSTRAG_LOG_LEVEL": "LOUD"}, "POSTRAG_LOG_LEVEL"),
        ({"POSTRAG_MIGRATIONS_DIR": "/nonexistent"}, "POSTRAG_MIGRATIONS_DIR"),
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
