-- V1_4: per-user preferences for retrieval and chat. Every column has a default that works out of
-- the box, so a user without a row (or with a fresh one) gets sensible behaviour.
-- depends: V1_3__collections_documents

CREATE TABLE user_preferences (
    user_id              bigint      NOT NULL
                         CONSTRAINT user_preferences_user_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    -- NULL means "the registry's default chat model".
    chat_model_id        bigint
                         CONSTRAINT user_preferences_chat_model_id_fkey
                         REFERENCES llm_models (id) ON DELETE SET NULL,
    similarity_threshold real        NOT NULL DEFAULT 0.3,
    top_k                integer     NOT NULL DEFAULT 8,
    temperature          real        NOT NULL DEFAULT 0.2,
    system_prompt        text        NOT NULL DEFAULT '',
    search_mode          text        NOT NULL DEFAULT 'hybrid',
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_preferences_pkey PRIMARY KEY (user_id),
    CONSTRAINT user_preferences_similarity_threshold_check
        CHECK (similarity_threshold BETWEEN 0 AND 1),
    CONSTRAINT user_preferences_top_k_check CHECK (top_k BETWEEN 1 AND 100),
    CONSTRAINT user_preferences_temperature_check CHECK (temperature BETWEEN 0 AND 2),
    CONSTRAINT user_preferences_system_prompt_check CHECK (char_length(system_prompt) <= 20000),
    CONSTRAINT user_preferences_search_mode_check
        CHECK (search_mode IN ('hybrid', 'semantic', 'fulltext'))
);

-- For ON DELETE SET NULL when a model leaves the registry.
CREATE INDEX user_preferences_chat_model_id_idx ON user_preferences (chat_model_id)
    WHERE chat_model_id IS NOT NULL;

CREATE TRIGGER user_preferences_set_updated_at BEFORE UPDATE ON user_preferences
    FOR EACH ROW EXECUTE FUNCTION postrag_set_updated_at();
