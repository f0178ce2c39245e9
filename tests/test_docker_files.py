"""docker/Dockerfile and docker/docker-compose.yml agree with the code (no Docker needed here)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import yaml

from app import cli, serve
from app.settings import VARS, Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
BUILD_TOOLS = ("gcc", "g++", "clang", "build-essential", "make ", "cmake", "python3-dev", "-dev ")
_VAR = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    found = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions((DOCKER / "Dockerfile").read_text()):
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _args(stage: list[tuple[str, str]]) -> dict[str, str]:
    return dict(rest.split("=", 1) for word, rest in stage if word == "ARG" and "=" in rest)


def _compose() -> dict:
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


def _interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} with `env` as the shell's variables."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.groups()
        if env.get(name):
            return env[name]
        if op and op.endswith("?"):
            raise LookupError(f"{name}: {arg}")
        return arg if op and op.endswith("-") else ""

    return _VAR.sub(one, value)


def _postrag_services() -> Iterator[tuple[str, dict]]:
    for name in ("app", "worker"):
        yield name, _compose()["services"][name]


def test_the_final_stage_runs_as_a_fixed_unprivileged_user():
    *_, final = _stages()
    users = [rest for word, rest in final if word == "USER"]
    assert users, "the final stage has no USER: it would run as root"
    user = _interpolate(users[-1], _args(final)).split(":")[0]
    assert user.isdigit() and int(user) >= 1000, user  # numeric: runAsNonRoot can check it
    created = _interpolate(" ".join(rest for word, rest in final if word == "RUN"), _args(final))
    assert re.search(rf'useradd .*--uid "?{user}"?', created), "the user is not created"


def test_the_final_stage_has_no_build_tools_and_no_sources():
    build, *_, final = _stages()
    assert len(_stages()) >= 2
    for word, rest in final:
        if word == "RUN":
            assert not any(tool in rest + " " for tool in BUILD_TOOLS), rest
            assert "apt-get install" not in rest and "pip install" not in rest, rest
        if word in ("COPY", "ADD"):
            assert rest.startswith("--from="), f"the final stage copies from the context: {rest}"
    stage_name = build[0][1].split()[-1]
    assert any(rest.startswith(f"--from={stage_name} ") for word, rest in final if word == "COPY")


def test_the_build_stage_copies_only_what_exists_and_is_not_ignored():
    build = _stages()[0]
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {".venv", ".git", ".env"} <= set(ignored)
    sources = [
        part
        for word, rest in build
        if word == "COPY" and not rest.startswith("--from")
        for part in shlex.split(rest)[:-1]
    ]
    assert {"pyproject.toml", "README.md", "app", "sql"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert source not in ignored and source.rstrip("/") not in ignored, source


def test_the_image_serves_on_its_exposed_port_and_checks_the_readiness_route():
    *_, final = _stages()
    (cmd,) = [rest for word, rest in final if word == "CMD"]
    command = yaml.safe_load(cmd)
    assert command[:2] == ["postrag", "serve"]
    assert 'postrag = "app.cli:main"' in (ROOT / "pyproject.toml").read_text()
    options = {opt for param in cli.serve.params for opt in param.opts}
    assert {c for c in command[2:] if c.startswith("--")} <= options
    port = command[command.index("--port") + 1]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert ("EXPOSE", port) in final
    (check,) = [rest for word, rest in final if word == "HEALTHCHECK"]
    assert f"127.0.0.1:{port}/readyz" in check and "curl" not in check
    health = (ROOT / "app" / "api" / "health.py").read_text()
    assert '@bp.get("/readyz")' in health
    assert 'auth="optional"' in health.split('@bp.get("/readyz")')[1]  # no token to send


def test_compose_reuses_the_db_service_of_the_db_compose_file():
    db = _compose()["services"]["db"]
    assert set(db) == {"extends"}, "the db service is extended, not copied"
    target = DOCKER / db["extends"]["file"]
    extended = yaml.safe_load(target.read_text())["services"][db["extends"]["service"]]
    assert "healthcheck" in extended  # what app and worker wait for
    named = {v.split(":")[0] for v in extended.get("volumes", []) if not v.startswith(".")}
    assert named <= set(_compose()["volumes"]), "extends does not bring top-level volumes"


def test_app_and_worker_run_the_same_image_after_the_database_is_healthy():
    services = dict(_postrag_services())
    app, worker = services["app"], services["worker"]
    assert app["image"] == worker["image"] and app["build"] == worker["build"]
    assert (DOCKER / app["build"]["context"] / app["build"]["dockerfile"]).is_file()
    for service in (app, worker):
        assert service["depends_on"]["db"]["condition"] == "service_healthy"
        grace = int(str(service["stop_grace_period"]).removesuffix("s"))
        assert grace > serve.GRACEFUL_TIMEOUT_S  # docker stop must not kill requests in flight
    assert worker["command"] == ["postrag", "worker"]
    assert worker["healthcheck"] == {"disable": True}
    assert app["environment"]["POSTRAG_WORKERS"] == "0"
    assert all(p.startswith("127.0.0.1:") for p in app["ports"])


def test_the_database_url_names_the_role_init_schema_creates():
    db_file = yaml.safe_load((DOCKER / "docker-compose-db.yml").read_text())
    db_env = db_file["services"]["db"]["environment"]
    init = (DOCKER / "init_schema.sh").read_text()
    url = _compose()["services"]["app"]["environment"]["DATABASE_URL"]
    for variable in ("POSTRAG_APP_USER", "POSTRAG_APP_PASSWORD", "POSTGRES_DB"):
        assert f"${{{variable}" in url and variable in init
        # The same default on both sides, or the app would log in as a role that does not exist.
        assert (
            _VAR.search(db_env[variable]).groups()[1:]
            == _VAR.search(  # type: ignore[union-attr]
                url[url.index(f"${{{variable}") :]
            ).groups()[1:]
        )
    assert "@db:5432/" in url


@pytest.mark.parametrize("service", ["app", "worker"])
def test_every_variable_compose_passes_is_one_postrag_reads_and_accepts(service):
    environment = _compose()["services"][service]["environment"]
    *_, final = _stages()
    image_env = {
        name
        for word, rest in final
        if word == "ENV"
        for name in re.findall(r"(\w+)=", rest)
        if name.startswith(("POSTRAG_", "DATABASE"))
    }
    read = {var.name for var in VARS}  # what Settings.from_env reads
    assert "POSTRAG_WORKERS" in read and "DATABASE_URL" in read  # the declarations are found
    assert set(environment) - read == set()
    # ... and every setting reaches the container, but for what the image fixes (its data and
    # migrations directories) and what is named per OAuth provider.
    fixed = {"POSTRAG_DATA_DIR", "POSTRAG_MIGRATIONS_DIR"}
    if service == "worker":
        fixed.add("POSTRAG_WORKERS")  # processes of `postrag serve`; a worker has --threads
    assert read - set(environment) - fixed == set()
    assert image_env - read == set()
    # The compose defaults, with only the required secrets given, make valid settings.
    with pytest.raises(LookupError, match="POSTRAG_SECRET_KEY"):
        {k: _interpolate(str(v), {"POSTRAG_APP_PASSWORD": "pw"}) for k, v in environment.items()}
    shell = {"POSTRAG_APP_PASSWORD": "pw", "POSTRAG_SECRET_KEY": "k" * 43}
    values = {k: _interpolate(str(v), shell) for k, v in environment.items()}
    settings = Settings.from_env(values)
    assert settings.database_url == "postgresql://postrag:pw@db:5432/postrag"
    assert settings.llm == "auto" and settings.embedder == "local"
