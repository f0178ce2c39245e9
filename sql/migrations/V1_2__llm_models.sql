-- V1_2: the registry of LLM models postrag can talk to, chat and embedding models alike.
-- depends: V1_1__extensions_users_tokens

CREATE TABLE llm_models (
    id             bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT llm_models_pkey PRIMARY KEY,
    provider       text        NOT NULL,
    name           text        NOT NULL,
    kind           text        NOT NULL,
    dimension      integer,
    context_length integer,
    capabilities   jsonb       NOT NULL DEFAULT '{}'::jsonb,
    is_default     boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT llm_models_provider_name_key UNIQUE (provider, name),
    CONSTRAINT llm_models_provider_check CHECK (provider IN ('ollama', 'openai', 'local')),
    CONSTRAINT llm_models_kind_check CHECK (kind IN ('chat', 'embedding')),
    CONSTRAINT llm_models_name_check CHECK (char_length(name) BETWEEN 1 AND 200),
    -- Embedding models must say their dimension (it decides the HNSW index); chat models have none.
    CONSTRAINT llm_models_dimension_check CHECK (
        (kind = 'embedding' AND dimension BETWEEN 1 AND 16000)
        OR (kind = 'chat' AND dimension IS NULL)
    ),
    CONSTRAINT llm_models_context_length_check CHECK (context_length > 0),
    CONSTRAINT llm_models_capabilities_check CHECK (jsonb_typeof(capabilities) = 'object')
);

-- At most one default model per kind.
CREATE UNIQUE INDEX llm_models_default_per_kind_idx ON llm_models (kind) WHERE is_default;

CREATE TRIGGER llm_models_set_updated_at BEFORE UPDATE ON llm_models
    FOR EACH ROW EXECUTE FUNCTION postrag_set_updated_at();
