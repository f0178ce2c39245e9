-- V2_4: request limits, LLM token budgets and usage accounting, counted in PostgreSQL.
-- Limits use windowed counters (one row per token and minute, per user and day) that a request
-- increments with one upsert, instead of counting a log; old windows are deleted as new ones
-- start. api_usage keeps one row per authenticated request for the usage views.
-- depends: V2_3__connector_tokens

CREATE TABLE request_counters (
    token_id     bigint      NOT NULL
                 CONSTRAINT request_counters_token_id_fkey
                 REFERENCES api_tokens (id) ON DELETE CASCADE,
    window_start timestamptz NOT NULL,
    requests     integer     NOT NULL,
    CONSTRAINT request_counters_pkey PRIMARY KEY (token_id, window_start)
);

CREATE TABLE llm_token_counters (
    user_id      bigint      NOT NULL
                 CONSTRAINT llm_token_counters_user_id_fkey
                 REFERENCES users (id) ON DELETE CASCADE,
    window_start timestamptz NOT NULL,
    tokens       bigint      NOT NULL,
    CONSTRAINT llm_token_counters_pkey PRIMARY KEY (user_id, window_start)
);

CREATE TABLE api_usage (
    id                bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT api_usage_pkey PRIMARY KEY,
    user_id           bigint      NOT NULL
                      CONSTRAINT api_usage_user_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    token_id          bigint
                      CONSTRAINT api_usage_token_id_fkey
                      REFERENCES api_tokens (id) ON DELETE SET NULL,
    method            text        NOT NULL,
    route             text        NOT NULL,
    status            smallint    NOT NULL,
    latency_ms        integer     NOT NULL,
    prompt_tokens     integer,
    completion_tokens integer,
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- "My usage since ..." and the cascade from users; the token FK's SET NULL.
CREATE INDEX api_usage_user_id_created_at_idx ON api_usage (user_id, created_at);
CREATE INDEX api_usage_token_id_idx ON api_usage (token_id) WHERE token_id IS NOT NULL;
CREATE INDEX api_usage_created_at_idx ON api_usage (created_at);
