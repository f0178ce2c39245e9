"""Settings: one frozen dataclass read from the environment once, validated, passed down.

Each field read from the environment declares its variable once (name, parser and bounds,
default, doc); Settings.from_env, the dataclass defaults, the tests and the README check use it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

from app.settings_vars import (
    VAR,
    Choice,
    Integer,
    IntegerOrCores,
    Number,
    OptionalText,
    Scopes,
    SettingsError,
    Text,
    Var,
    flag,
    http_url,
    memory,
    model_suffix,
    origins,
    required,
    setting,
    words,
)

__all__ = ["VARS", "OAUTH_VARIABLES", "OAuthClient", "Settings", "SettingsError", "Var"]

# A checkout has sql/migrations beside app/; an installed wheel carries a copy in app/_migrations.
_REPO_MIGRATIONS = Path(__file__).resolve().parent.parent / "sql" / "migrations"
_PACKAGED_MIGRATIONS = Path(__file__).resolve().parent / "_migrations"


def _data_dir(name: str, text: str) -> Path:
    return Path(text or platformdirs.user_data_dir("postrag")).expanduser()


def _migrations_dir(name: str, text: str) -> Path:
    default = _REPO_MIGRATIONS if _REPO_MIGRATIONS.is_dir() else _PACKAGED_MIGRATIONS
    path = Path(text or default)
    if not path.is_dir():
        raise SettingsError(f"{name}: {path} is not a directory")
    return path


@dataclass(frozen=True)
class OAuthClient:
    """Where and as whom postrag refreshes one provider's tokens (POSTRAG_OAUTH_*__<PROVIDER>)."""

    provider: str
    token_url: str
    client_id: str
    client_secret: str | None = None


@dataclass(frozen=True)
class Settings:
    """Everything postrag reads from its environment; fields with a Var are read from it."""

    # Built directly (tests), these three have no default; from_env gives them theirs.
    database_url: str | None = field(
        metadata=required(Var("DATABASE_URL", OptionalText(), "", "PostgreSQL (the primary)"))
    )
    data_dir: Path = field(
        metadata=required(Var("POSTRAG_DATA_DIR", _data_dir, "", "pgdata/ and admin-token"))
    )
    migrations_dir: Path = field(
        metadata=required(Var("POSTRAG_MIGRATIONS_DIR", _migrations_dir, "", "migration files"))
    )
    migrate_on_start: bool = setting(
        Var("POSTRAG_MIGRATE_ON_START", flag, "true", "apply migrations at start")
    )
    pool_min_size: int = setting(
        Var("POSTRAG_POOL_MIN_SIZE", Integer(low=0), "1", "connections per process, at least")
    )
    pool_max_size: int = setting(
        Var("POSTRAG_POOL_MAX_SIZE", Integer(low=1), "10", "connections per process, at most")
    )
    pool_timeout_s: float = setting(
        Var("POSTRAG_POOL_TIMEOUT_S", Integer(low=1), "10", "wait for a pooled connection")
    )
    log_level: str = setting(
        Var(
            "POSTRAG_LOG_LEVEL",
            Choice(("DEBUG", "INFO", "WARNING", "ERROR"), fold=str.upper),
            "INFO",
            "the least severe log records written",
        )
    )
    # Ingestion
    workers: int = setting(
        Var(
            "POSTRAG_WORKERS",
            IntegerOrCores(low=0, high=256),
            "auto",
            "worker processes beside `serve`'s HTTP ones (auto: one per available core)",
        )
    )
    embed_batch: int = setting(
        Var(
            "POSTRAG_EMBED_BATCH",
            Integer(low=1, high=64),
            "1",
            "chunks the bundled model embeds in one onnxruntime run (bench/embed_limit.py)",
        )
    )
    jobs_per_user: int = setting(
        Var("POSTRAG_JOBS_PER_USER", Integer(low=1), "1", "a user's jobs at once, on all workers")
    )
    max_upload_bytes: int = setting(
        Var("POSTRAG_MAX_UPLOAD_MB", Integer(low=1, unit=1024 * 1024), "25", "largest document")
    )
    extraction_memory_mb: int = setting(
        Var(
            "POSTRAG_EXTRACTION_MEMORY_MB",
            Integer(low=256, or_zero=True),
            "2048",
            "memory of the process reading one file (0: no limit)",
        )
    )
    extraction_timeout_s: float = setting(
        Var("POSTRAG_EXTRACTION_TIMEOUT_S", Number(1.0, 86400.0), "600", "reading one file")
    )
    ocr_max_pages: int = setting(
        Var(
            "POSTRAG_OCR_MAX_PAGES",
            Integer(low=0, high=5_000),
            "20",
            "PDF pages without a text layer read by OCR in one file (more: the file fails)",
        )
    )
    ocr_max_pixels: int = setting(
        Var(
            "POSTRAG_OCR_MAX_PIXELS",
            Integer(low=1_000_000, high=150_000_000, why="Pillow refuses larger images"),
            "40000000",
            "pixels of an image read by OCR (larger: refused at upload, 422)",
        )
    )
    chunk_tokens: int = setting(
        Var(
            "POSTRAG_CHUNK_TOKENS",
            Integer(low=16, high=240, why="the model reads 256 tokens"),
            "200",
            "chunk size in tokens",
        )
    )
    chunk_overlap_tokens: int = setting(
        Var("POSTRAG_CHUNK_OVERLAP_TOKENS", Integer(low=0), "30", "chunk overlap in tokens")
    )
    split_chunks: int = setting(
        Var(
            "POSTRAG_SPLIT_CHUNKS",
            Integer(low=16, high=4096),
            "64",
            "a document with more chunks is embedded in ranges of this many, by every worker",
        )
    )
    job_lease_s: int = setting(
        Var("POSTRAG_JOB_LEASE_S", Integer(low=5), "60", "a job's lease, renewed while it runs")
    )
    job_max_attempts: int = setting(
        Var("POSTRAG_JOB_MAX_ATTEMPTS", Integer(low=1), "4", "a job's attempts before it fails")
    )
    job_retry_base_s: float = 2.0  # not a variable: the first retry's delay (tests shorten it)
    # Embeddings
    embedder: str = setting(
        Var("POSTRAG_EMBEDDER", Choice(("local", "ollama", "openai")), "local", "who embeds")
    )
    embedding_model: str = setting(
        Var("POSTRAG_EMBEDDING_MODEL", Text(), "", "the embedding model's name")
    )
    ollama_url: str = setting(Var("OLLAMA_URL", Text(), "http://127.0.0.1:11434", "Ollama"))
    openai_base_url: str = setting(
        Var("OPENAI_BASE_URL", Text(), "https://api.openai.com/v1", "OpenAI-compatible server")
    )
    openai_api_key: str | None = setting(Var("OPENAI_API_KEY", OptionalText(), "", "its key"))
    hnsw_ef_search: int = setting(
        Var("POSTRAG_HNSW_EF_SEARCH", Integer(low=1, high=1000), "128", "hnsw.ef_search floor")
    )
    exact_search_max_rows: int = setting(
        Var("POSTRAG_EXACT_SEARCH_MAX_ROWS", Integer(low=0), "2000", "exact scan up to this")
    )
    bm25_k1: float = setting(Var("POSTRAG_BM25_K1", Number(0.0, 3.0), "0.9", "BM25 k1"))
    bm25_b: float = setting(Var("POSTRAG_BM25_B", Number(0.0, 1.0), "0.4", "BM25 b"))
    # Reranking after fusion (app/providers/rerank.py): a rerank server, or a local ONNX model.
    rerank: str = setting(
        Var(
            "POSTRAG_RERANK",
            Choice(("none", "cohere", "jina", "tei", "infinity", "llamacpp", "onnx")),
            "none",
            "who reranks the fused candidates",
        )
    )
    rerank_url: str = setting(
        Var("POSTRAG_RERANK_URL", Text(strip=True), "", "the rerank server's base URL")
    )
    rerank_model: str = setting(
        Var("POSTRAG_RERANK_MODEL", Text(strip=True), "", "the model it should use")
    )
    rerank_api_key: str | None = setting(
        Var("POSTRAG_RERANK_API_KEY", OptionalText(), "", "its bearer token")
    )
    rerank_timeout_s: float = setting(
        Var("POSTRAG_RERANK_TIMEOUT_S", Number(0.1, 600.0), "10", "wait for its scores")
    )
    rerank_candidates: int = setting(
        Var("POSTRAG_RERANK_CANDIDATES", Integer(low=1, high=200), "50", "fused hits reranked")
    )
    rerank_onnx_path: str = setting(
        Var("POSTRAG_RERANK_ONNX_PATH", Text(strip=True), "", "cross-encoder .onnx file")
    )
    rerank_onnx_sha256: str = setting(
        Var("POSTRAG_RERANK_ONNX_SHA256", Text(strip=True), "", "that file's pinned sha256")
    )
    index_build_memory: str = setting(
        Var("POSTRAG_INDEX_BUILD_MEMORY", memory, "1GB", "maintenance_work_mem of HNSW builds")
    )
    # Language models (chat); from_env makes an unset POSTRAG_LLM ollama when OLLAMA_URL is set.
    llm: str = setting(
        Var(
            "POSTRAG_LLM",
            Choice(("ollama", "openai", "none", "auto")),
            "auto",
            "who answers chats (auto: ollama if one answers, else none)",
        )
    )
    chat_model: str = setting(
        Var("POSTRAG_CHAT_MODEL", Text(strip=True), "", "the chat model on that provider")
    )
    rag_model_suffix: str = setting(
        Var(
            "POSTRAG_RAG_MODEL_SUFFIX",
            model_suffix,
            "+rag",
            "/v1 lists each chat model again with this suffix: it answers over your documents",
        )
    )
    llm_timeout_s: float = setting(
        Var("POSTRAG_LLM_TIMEOUT_S", Number(0.1, 3600.0), "120", "wait for a model's next piece")
    )
    chat_context_tokens: int = setting(
        Var(
            "POSTRAG_CHAT_CONTEXT_TOKENS",
            Integer(low=1024, high=1_000_000),
            "8192",
            "cap on the context per answer",
        )
    )
    chat_answer_tokens: int = setting(
        Var("POSTRAG_CHAT_ANSWER_TOKENS", Integer(low=16), "1024", "room kept for the answer")
    )
    chat_context_window: int = setting(
        Var(
            "POSTRAG_CHAT_CONTEXT_WINDOW",
            Integer(low=0, high=1000),
            "0",
            "tokens of neighbouring text per source in a chat's prompt (0: none)",
        )
    )
    chat_answers_per_process: int = setting(
        Var(
            "POSTRAG_CHAT_ANSWERS_PER_PROCESS",
            Integer(low=1, high=10000),
            "32",
            "answers one app process generates at once (more: 503)",
        )
    )
    chat_answers_per_user: int = setting(
        Var(
            "POSTRAG_CHAT_ANSWERS_PER_USER",
            Integer(low=1, high=10000),
            "4",
            "answers one app process generates at once for one user (more: 429)",
        )
    )
    chat_streams_per_user: int = setting(
        Var(
            "POSTRAG_CHAT_STREAMS_PER_USER",
            Integer(low=1, high=10000),
            "4",
            "answer streams one user follows at once from one app process (GET .../events;"
            " more: 429)",
        )
    )
    chat_events_keep_hours: int = setting(
        Var(
            "POSTRAG_CHAT_EVENTS_KEEP_HOURS",
            Integer(low=1, high=8760),
            "24",
            "an answer's stored events (to resume its stream) are kept this long after its end",
        )
    )
    chat_tool_rounds: int = setting(
        Var(
            "POSTRAG_CHAT_TOOL_ROUNDS",
            Integer(low=1, high=50),
            "5",
            "rounds of MCP tool calls per answer (then the model answers without tools)",
        )
    )
    chat_tool_time_s: float = setting(
        Var(
            "POSTRAG_CHAT_TOOL_TIME_S",
            Number(1.0, 86400.0),
            "600",
            "no MCP tool call starts this long after the answer began",
        )
    )
    chat_question_timeout_s: float = setting(
        Var(
            "POSTRAG_CHAT_QUESTION_TIMEOUT_S",
            Number(0.5, 86400.0),
            "300",
            "how long an MCP server's question waits for the user (then: cancelled)",
        )
    )
    chat_followups: str = setting(
        Var(
            "POSTRAG_CHAT_FOLLOWUPS",
            Choice(("model", "rule", "off")),
            "model",
            "how a follow-up becomes a standalone search query (model: the chat model rewrites"
            " it, else the offline rule)",
        )
    )
    chat_rewrite_timeout_s: float = setting(
        Var(
            "POSTRAG_CHAT_REWRITE_TIMEOUT_S",
            Number(0.1, 120.0),
            "10",
            "longest wait for the chat model's rewrite of a follow-up (then: the offline rule)",
        )
    )
    # Connector (OAuth) tokens
    secret_key: str | None = setting(
        Var("POSTRAG_SECRET_KEY", OptionalText(), "", "encrypts connector tokens")
    )
    old_secret_keys: tuple[str, ...] = setting(
        Var("POSTRAG_OLD_SECRET_KEYS", words, "", "earlier secrets, still decrypting")
    )
    oauth_clients: tuple[OAuthClient, ...] = ()  # POSTRAG_OAUTH_*__<PROVIDER> (OAUTH_VARIABLES)
    # Atlassian consent (OAuth 2.0 three-legged); its client is POSTRAG_OAUTH_*__ATLASSIAN
    atlassian_authorize_url: str = setting(
        Var(
            "POSTRAG_ATLASSIAN_AUTHORIZE_URL",
            http_url,
            "https://auth.atlassian.com/authorize",
            "where users consent",
        )
    )
    atlassian_resources_url: str = setting(
        Var(
            "POSTRAG_ATLASSIAN_RESOURCES_URL",
            http_url,
            "https://api.atlassian.com/oauth/token/accessible-resources",
            "the sites a token reaches",
        )
    )
    atlassian_me_url: str = setting(
        Var(
            "POSTRAG_ATLASSIAN_ME_URL",
            http_url,
            "https://api.atlassian.com/me",
            "whose account a token is (links it to the user)",
        )
    )
    atlassian_scopes: tuple[str, ...] = setting(
        Var(
            "POSTRAG_ATLASSIAN_SCOPES",
            Scopes("offline_access"),
            "read:confluence-content.all read:confluence-space.summary search:confluence"
            " read:jira-work read:jira-user read:me offline_access",
            "scopes asked at consent",
        )
    )
    atlassian_redirect_uri: str | None = setting(
        Var(
            "POSTRAG_ATLASSIAN_REDIRECT_URI",
            OptionalText(),
            "",
            "the callback URL registered with Atlassian (unset: from the request)",
        )
    )
    source_hosts: tuple[str, ...] = setting(
        Var(
            "POSTRAG_SOURCE_HOSTS",
            words,
            "",
            "hosts and networks sources may reach although not public (and send tokens to)",
        )
    )
    # MCP servers whose tools chats use (app/services/mcp_servers.py)
    mcp_hosts: tuple[str, ...] = setting(
        Var(
            "POSTRAG_MCP_HOSTS",
            words,
            "",
            "hosts and networks MCP servers may be at although not public",
        )
    )
    mcp_timeout_s: float = setting(
        Var("POSTRAG_MCP_TIMEOUT_S", Number(1.0, 3600.0), "60", "longest MCP call or discovery")
    )
    mcp_result_chars: int = setting(
        Var(
            "POSTRAG_MCP_RESULT_CHARS",
            Integer(low=200, high=1_000_000),
            "20000",
            "a tool result's text kept for the model",
        )
    )
    rate_limit_per_minute: int = setting(
        Var("POSTRAG_RATE_LIMIT_PER_MINUTE", Integer(low=0), "600", "requests per user (0: any)")
    )
    llm_tokens_per_day: int = setting(
        Var("POSTRAG_LLM_TOKENS_PER_DAY", Integer(low=0), "0", "LLM tokens per user (0: any)")
    )
    cors_origins: tuple[str, ...] = setting(
        Var("POSTRAG_CORS_ORIGINS", origins, "", "browsers' origins allowed to call the API")
    )
    # Team identity: bearer JWTs of an OpenID provider
    oidc_issuer: str | None = setting(
        Var("POSTRAG_OIDC_ISSUER", OptionalText(), "", "the OpenID provider's issuer URL")
    )
    oidc_audience: str | None = setting(
        Var("POSTRAG_OIDC_AUDIENCE", OptionalText(), "", "the aud its tokens must hold")
    )
    oidc_username_claims: tuple[str, ...] = setting(
        Var(
            "POSTRAG_OIDC_USERNAME_CLAIMS",
            words,
            "preferred_username,email",
            "claim paths naming a user; the first present wins",
        )
    )
    oidc_admin_claim: str = setting(
        Var("POSTRAG_OIDC_ADMIN_CLAIM", Text(strip=True), "", "claim path of the admin role")
    )
    oidc_admin_value: str = setting(
        Var("POSTRAG_OIDC_ADMIN_VALUE", Text(strip=True), "postrag-admin", "the admin role's value")
    )
    oidc_groups_claim: str = setting(
        Var("POSTRAG_OIDC_GROUPS_CLAIM", Text(strip=True), "groups", "claim path of the groups")
    )
    # Team identity: the web page's sign-in (authorization code with PKCE)
    oidc_client_id: str | None = setting(
        Var("POSTRAG_OIDC_CLIENT_ID", OptionalText(), "", "postrag's client id (unset: audience)")
    )
    oidc_client_secret: str | None = setting(
        Var("POSTRAG_OIDC_CLIENT_SECRET", OptionalText(), "", "its secret (unset: public client)")
    )
    oidc_scopes: tuple[str, ...] = setting(
        Var(
            "POSTRAG_OIDC_SCOPES",
            Scopes("openid"),
            "openid profile email",
            "scopes asked at sign-in",
        )
    )
    session_hours: int = setting(
        Var("POSTRAG_SESSION_HOURS", Integer(low=1, high=720), "12", "a web sign-in lasts")
    )
    # Operations
    database_replica_url: str | None = setting(
        Var("DATABASE_REPLICA_URL", OptionalText(), "", "a streaming replica for reads")
    )
    replica_max_lag_s: float = setting(
        Var("POSTRAG_REPLICA_MAX_LAG_S", Number(0.0, 86400.0), "5", "more lag: read the primary")
    )
    metrics_token: str | None = setting(
        Var("POSTRAG_METRICS_TOKEN", OptionalText(min_length=16), "", "bearer token for /metrics")
    )
    log_format: str = setting(
        Var("POSTRAG_LOG_FORMAT", Choice(("text", "json"), fold=str.lower), "text", "log lines")
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Every declared variable read from `env` (default: os.environ), then checked together."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {
            f.name: f.metadata[VAR].read(env) for f in fields(cls) if VAR in f.metadata
        }
        if not env.get("POSTRAG_LLM") and env.get("OLLAMA_URL"):
            values["llm"] = "ollama"  # an Ollama was named: it answers unless told otherwise
        settings = cls(**values, oauth_clients=_oauth_clients(env))
        _check_together(settings)
        return settings

    def with_database_url(self, url: str) -> Settings:
        return replace(self, database_url=url)

    @property
    def oidc_client(self) -> str | None:
        """The client id the web page signs in as: POSTRAG_OIDC_CLIENT_ID, else the audience."""
        return self.oidc_client_id or self.oidc_audience


VARS: tuple[Var[Any], ...] = tuple(f.metadata[VAR] for f in fields(Settings) if VAR in f.metadata)
OAUTH_VARIABLES = tuple(
    f"POSTRAG_OAUTH_{part}__" for part in ("TOKEN_URL", "CLIENT_ID", "CLIENT_SECRET")
)
# Providers whose token URL may be left out: a client id alone configures them.
DEFAULT_TOKEN_URLS = {"ATLASSIAN": "https://auth.atlassian.com/oauth/token"}


def _check_together(settings: Settings) -> None:
    """The rules between variables (each one's own bounds are in its declaration)."""
    if settings.pool_max_size < settings.pool_min_size:
        raise SettingsError("POSTRAG_POOL_MAX_SIZE must be >= POSTRAG_POOL_MIN_SIZE")
    if settings.chunk_overlap_tokens >= settings.chunk_tokens // 2:
        raise SettingsError("POSTRAG_CHUNK_OVERLAP_TOKENS must be < half of POSTRAG_CHUNK_TOKENS")
    if settings.chat_answer_tokens > settings.chat_context_tokens // 2:
        raise SettingsError(
            "POSTRAG_CHAT_ANSWER_TOKENS must be <= half of POSTRAG_CHAT_CONTEXT_TOKENS"
        )
    _check_oidc(settings)
    _check_rerank(settings)
    _check_local_model(settings)


def _check_local_model(settings: Settings) -> None:
    """The local embedder runs one of its bundled models (empty: the default one)."""
    from app.providers.local_embedder import MODEL_NAMES

    if settings.embedder == "local" and settings.embedding_model not in ("", *MODEL_NAMES):
        raise SettingsError(
            f"POSTRAG_EMBEDDING_MODEL={settings.embedding_model!r}: the local embedder has"
            f" {', '.join(MODEL_NAMES)} (empty: the default)"
        )


def _check_rerank(settings: Settings) -> None:
    """A rerank server needs its URL; the ONNX model needs its file and pinned sha256."""
    if settings.rerank == "onnx":
        if not settings.rerank_onnx_path or not re.fullmatch(
            r"[0-9a-fA-F]{64}", settings.rerank_onnx_sha256
        ):
            raise SettingsError(
                "POSTRAG_RERANK=onnx needs POSTRAG_RERANK_ONNX_PATH and"
                " POSTRAG_RERANK_ONNX_SHA256 (64 hex digits)"
            )
    elif settings.rerank != "none" and not re.match(r"https?://\S+$", settings.rerank_url):
        raise SettingsError(f"POSTRAG_RERANK={settings.rerank} needs an http(s) POSTRAG_RERANK_URL")


# An issuer is a URL without query or fragment; plain http would let anyone on the way swap the
# provider's keys, so it is allowed on loopback only (a provider on the same machine, tests).
_ISSUER = re.compile(
    r"(https://[^\s/?#]+|http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]+)?)(/[^\s?#]*)?"
)


def _check_oidc(settings: Settings) -> None:
    """Issuer and audience go together; keys over plain http only from this machine."""
    if settings.oidc_issuer and not settings.oidc_audience:
        raise SettingsError("POSTRAG_OIDC_AUDIENCE must be set with POSTRAG_OIDC_ISSUER")
    if settings.oidc_audience and not settings.oidc_issuer:
        raise SettingsError("POSTRAG_OIDC_ISSUER must be set with POSTRAG_OIDC_AUDIENCE")
    if (settings.oidc_client_id or settings.oidc_client_secret) and not settings.oidc_issuer:
        raise SettingsError(
            "POSTRAG_OIDC_CLIENT_ID and POSTRAG_OIDC_CLIENT_SECRET need POSTRAG_OIDC_ISSUER"
        )
    issuer = settings.oidc_issuer
    if issuer and (len(issuer) > 2000 or not _ISSUER.fullmatch(issuer)):
        raise SettingsError(
            "POSTRAG_OIDC_ISSUER must be an https URL (http only on loopback), without query"
            f" or fragment, of 2000 characters at most, got {issuer[:100]!r}"
        )


def _oauth_clients(env: Mapping[str, str]) -> tuple[OAuthClient, ...]:
    """POSTRAG_OAUTH_TOKEN_URL__JIRA (+ _CLIENT_ID__JIRA, _CLIENT_SECRET__JIRA) per provider;
    for a provider of DEFAULT_TOKEN_URLS, its _CLIENT_ID__ alone."""
    url_var, id_var, secret_var = OAUTH_VARIABLES
    named = {k for k in env if k.startswith(url_var)}
    named |= {url_var + s for s in DEFAULT_TOKEN_URLS if env.get(id_var + s)}
    clients = []
    for name in sorted(named):
        suffix = name.removeprefix(url_var)
        provider = suffix.lower()
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,39}", provider):
            raise SettingsError(f"{name}: the provider name must look like jira or my_idp")
        url = env.get(name) or DEFAULT_TOKEN_URLS.get(suffix, "")
        if not re.match(r"https?://", url):
            raise SettingsError(f"{name} must be an http(s) URL, got {url!r}")
        client_id = env.get(f"{id_var}{suffix}", "")
        if not client_id:
            raise SettingsError(f"{id_var}{suffix} must be set with {name}")
        secret = env.get(f"{secret_var}{suffix}") or None
        clients.append(OAuthClient(provider, url, client_id, secret))
    return tuple(clients)
