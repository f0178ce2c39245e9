"""Settings: one frozen dataclass read from the environment once, validated, passed down."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import platformdirs

# A checkout has sql/migrations beside app/; an installed wheel carries a copy in app/_migrations.
_REPO_MIGRATIONS = Path(__file__).resolve().parent.parent / "sql" / "migrations"
_PACKAGED_MIGRATIONS = Path(__file__).resolve().parent / "_migrations"


class SettingsError(ValueError):
    """A setting has a bad value; the message names the variable."""


@dataclass(frozen=True)
class OAuthClient:
    """Where and as whom postrag refreshes one provider's tokens (POSTRAG_OAUTH_*__<PROVIDER>)."""

    provider: str
    token_url: str
    client_id: str
    client_secret: str | None = None


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    data_dir: Path
    migrations_dir: Path
    migrate_on_start: bool = True
    pool_min_size: int = 1
    pool_max_size: int = 10
    pool_timeout_s: float = 10.0
    log_level: str = "INFO"
    max_page_size: int = 100
    # Ingestion
    workers: int = 2  # worker processes `postrag serve` starts beside its HTTP processes
    jobs_per_user: int = 1  # jobs one user's documents may run at once, on all workers
    max_upload_bytes: int = 25 * 1024 * 1024
    extraction_memory_mb: int = 2048  # memory of the process reading one file (0: no limit)
    extraction_timeout_s: float = 600.0
    chunk_tokens: int = 200
    chunk_overlap_tokens: int = 30
    job_lease_s: int = 60
    job_max_attempts: int = 4
    job_retry_base_s: float = 2.0
    # Embeddings
    embedder: str = "local"
    embedding_model: str = ""
    ollama_url: str = "http://127.0.0.1:11434"
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: str | None = None
    hnsw_ef_search: int = 128
    exact_search_max_rows: int = 2000
    bm25_k1: float = 0.9
    bm25_b: float = 0.4
    index_build_memory: str = "1GB"
    # Language models (chat)
    llm: str = "none"  # ollama | openai | none | auto (auto: ollama if one answers, else none)
    chat_model: str = ""
    llm_timeout_s: float = 120.0
    chat_context_tokens: int = 8192
    chat_answer_tokens: int = 1024
    # Connector (OAuth) tokens
    secret_key: str | None = None
    old_secret_keys: tuple[str, ...] = ()
    oauth_clients: tuple[OAuthClient, ...] = ()
    rate_limit_per_minute: int = 0  # requests per token and minute (0: no limit)
    llm_tokens_per_day: int = (
        0  # LLM tokens (prompt + completion) per user and UTC day (0: no limit)
    )
    cors_origins: tuple[str, ...] = ()  # browsers' origins allowed to call the API (none)
    # Operations
    database_replica_url: str | None = None  # a streaming replica for reads (search, listings)
    replica_max_lag_s: float = 5.0  # reads go to the primary when the replica lags more
    metrics_token: str | None = None  # bearer token for GET /metrics (admins' tokens work too)
    log_format: str = "text"  # text | json

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("POSTRAG_DATA_DIR") or platformdirs.user_data_dir("postrag"))
        default_dir = _REPO_MIGRATIONS if _REPO_MIGRATIONS.is_dir() else _PACKAGED_MIGRATIONS
        migrations_dir = Path(env.get("POSTRAG_MIGRATIONS_DIR") or default_dir)
        if not migrations_dir.is_dir():
            raise SettingsError(f"POSTRAG_MIGRATIONS_DIR: {migrations_dir} is not a directory")
        min_size = _int(env, "POSTRAG_POOL_MIN_SIZE", 1, low=0)
        max_size = _int(env, "POSTRAG_POOL_MAX_SIZE", 10, low=1)
        if max_size < min_size:
            raise SettingsError("POSTRAG_POOL_MAX_SIZE must be >= POSTRAG_POOL_MIN_SIZE")
        log_level = env.get("POSTRAG_LOG_LEVEL", "INFO").upper()
        if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise SettingsError("POSTRAG_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR")
        embedder = env.get("POSTRAG_EMBEDDER", "local")
        if embedder not in {"local", "ollama", "openai"}:
            raise SettingsError("POSTRAG_EMBEDDER must be one of local, ollama, openai")
        chunk_tokens = _int(env, "POSTRAG_CHUNK_TOKENS", 200, low=16)
        if chunk_tokens > 240:
            raise SettingsError("POSTRAG_CHUNK_TOKENS must be <= 240 (the model reads 256 tokens)")
        overlap = _int(env, "POSTRAG_CHUNK_OVERLAP_TOKENS", 30, low=0)
        if overlap >= chunk_tokens // 2:
            raise SettingsError(
                "POSTRAG_CHUNK_OVERLAP_TOKENS must be < half of POSTRAG_CHUNK_TOKENS"
            )
        llm = env.get("POSTRAG_LLM") or ("ollama" if env.get("OLLAMA_URL") else "auto")
        if llm not in {"ollama", "openai", "none", "auto"}:
            raise SettingsError("POSTRAG_LLM must be one of ollama, openai, none")
        context_tokens = _int(env, "POSTRAG_CHAT_CONTEXT_TOKENS", 8192, low=1024, high=1_000_000)
        answer_tokens = _int(env, "POSTRAG_CHAT_ANSWER_TOKENS", 1024, low=16)
        if answer_tokens > context_tokens // 2:
            raise SettingsError(
                "POSTRAG_CHAT_ANSWER_TOKENS must be <= half of POSTRAG_CHAT_CONTEXT_TOKENS"
            )
        extraction_memory_mb = _int(env, "POSTRAG_EXTRACTION_MEMORY_MB", 2048, low=0)
        if 0 < extraction_memory_mb < 256:
            raise SettingsError("POSTRAG_EXTRACTION_MEMORY_MB must be 0 (no limit) or >= 256")
        log_format = env.get("POSTRAG_LOG_FORMAT", "text").lower()
        if log_format not in {"text", "json"}:
            raise SettingsError("POSTRAG_LOG_FORMAT must be text or json")
        metrics_token = env.get("POSTRAG_METRICS_TOKEN") or None
        if metrics_token is not None and len(metrics_token) < 16:
            raise SettingsError("POSTRAG_METRICS_TOKEN must be at least 16 characters")
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            data_dir=data_dir.expanduser(),
            migrations_dir=migrations_dir,
            migrate_on_start=_bool(env, "POSTRAG_MIGRATE_ON_START", True),
            pool_min_size=min_size,
            pool_max_size=max_size,
            pool_timeout_s=float(_int(env, "POSTRAG_POOL_TIMEOUT_S", 10, low=1)),
            log_level=log_level,
            workers=_int(env, "POSTRAG_WORKERS", 2, low=0),
            jobs_per_user=_int(env, "POSTRAG_JOBS_PER_USER", 1, low=1),
            max_upload_bytes=_int(env, "POSTRAG_MAX_UPLOAD_MB", 25, low=1) * 1024 * 1024,
            extraction_memory_mb=extraction_memory_mb,
            extraction_timeout_s=_float(
                env, "POSTRAG_EXTRACTION_TIMEOUT_S", 600.0, low=1.0, high=86400.0
            ),
            chunk_tokens=chunk_tokens,
            chunk_overlap_tokens=overlap,
            job_lease_s=_int(env, "POSTRAG_JOB_LEASE_S", 60, low=5),
            job_max_attempts=_int(env, "POSTRAG_JOB_MAX_ATTEMPTS", 4, low=1),
            embedder=embedder,
            embedding_model=env.get("POSTRAG_EMBEDDING_MODEL", ""),
            ollama_url=env.get("OLLAMA_URL") or "http://127.0.0.1:11434",
            openai_base_url=env.get("OPENAI_BASE_URL") or "https://api.openai.com/v1",
            openai_api_key=env.get("OPENAI_API_KEY") or None,
            hnsw_ef_search=_int(env, "POSTRAG_HNSW_EF_SEARCH", 128, low=1, high=1000),
            exact_search_max_rows=_int(env, "POSTRAG_EXACT_SEARCH_MAX_ROWS", 2000, low=0),
            bm25_k1=_float(env, "POSTRAG_BM25_K1", 0.9, low=0.0, high=3.0),
            bm25_b=_float(env, "POSTRAG_BM25_B", 0.4, low=0.0, high=1.0),
            index_build_memory=_memory(env, "POSTRAG_INDEX_BUILD_MEMORY", "1GB"),
            llm=llm,
            chat_model=env.get("POSTRAG_CHAT_MODEL", "").strip(),
            llm_timeout_s=_float(env, "POSTRAG_LLM_TIMEOUT_S", 120.0, low=0.1, high=3600.0),
            chat_context_tokens=context_tokens,
            chat_answer_tokens=answer_tokens,
            secret_key=env.get("POSTRAG_SECRET_KEY") or None,
            old_secret_keys=tuple(
                k.strip() for k in env.get("POSTRAG_OLD_SECRET_KEYS", "").split(",") if k.strip()
            ),
            oauth_clients=_oauth_clients(env),
            cors_origins=_origins(env, "POSTRAG_CORS_ORIGINS"),
            rate_limit_per_minute=_int(env, "POSTRAG_RATE_LIMIT_PER_MINUTE", 600, low=0),
            llm_tokens_per_day=_int(env, "POSTRAG_LLM_TOKENS_PER_DAY", 0, low=0),
            database_replica_url=env.get("DATABASE_REPLICA_URL") or None,
            replica_max_lag_s=_float(env, "POSTRAG_REPLICA_MAX_LAG_S", 5.0, low=0.0, high=86400.0),
            metrics_token=metrics_token,
            log_format=log_format,
        )

    def with_database_url(self, url: str) -> Settings:
        return replace(self, database_url=url)


_OAUTH_URL = "POSTRAG_OAUTH_TOKEN_URL__"


def _oauth_clients(env: Mapping[str, str]) -> tuple[OAuthClient, ...]:
    """POSTRAG_OAUTH_TOKEN_URL__JIRA (+ _CLIENT_ID__JIRA, _CLIENT_SECRET__JIRA) per provider."""
    clients = []
    for name in sorted(k for k in env if k.startswith(_OAUTH_URL)):
        suffix = name.removeprefix(_OAUTH_URL)
        provider = suffix.lower()
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,39}", provider):
            raise SettingsError(f"{name}: the provider name must look like jira or my_idp")
        url = env[name]
        if not re.match(r"https?://", url):
            raise SettingsError(f"{name} must be an http(s) URL, got {url!r}")
        client_id = env.get(f"POSTRAG_OAUTH_CLIENT_ID__{suffix}", "")
        if not client_id:
            raise SettingsError(f"POSTRAG_OAUTH_CLIENT_ID__{suffix} must be set with {name}")
        secret = env.get(f"POSTRAG_OAUTH_CLIENT_SECRET__{suffix}") or None
        clients.append(OAuthClient(provider, url, client_id, secret))
    return tuple(clients)


def _origins(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated origins (scheme://host[:port]) or *."""
    origins = tuple(o.strip().rstrip("/") for o in env.get(name, "").split(",") if o.strip())
    for origin in origins:
        if origin != "*" and not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+", origin):
            raise SettingsError(f"{name}: {origin!r} is not an origin like https://app.example")
    return origins


def _int(
    env: Mapping[str, str], name: str, default: int, *, low: int, high: int | None = None
) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < low:
        raise SettingsError(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise SettingsError(f"{name} must be <= {high}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _memory(env: Mapping[str, str], name: str, default: str) -> str:
    """A PostgreSQL memory setting such as 512MB or 2GB."""
    raw = (env.get(name) or default).strip()
    if not re.fullmatch(r"[1-9][0-9]{0,6}(kB|MB|GB)", raw):
        raise SettingsError(f"{name} must look like 512MB or 2GB, got {raw!r}")
    return raw


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")
