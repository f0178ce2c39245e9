-- V2_6: limits that hold against many tokens and parallel requests, tokens revoked with the
-- token that made them, and a default chat model that knows who chose it.
--
-- request_counters count per user, not per token (any token can make more tokens, so a limit
-- per token was no limit); the minute windows are dropped, not converted. llm_token_counters
-- gain `reserved`: the tokens held by answers in progress (their prompt and longest answer),
-- so parallel requests cannot all pass the daily budget at once. api_tokens gain `parent_id`,
-- the token that made each one (NULL for tokens issued for a new user, and for tokens made
-- before this migration), so that revoking a token revokes what it made. llm_models gain
-- `default_source`: 'environment' for the default chat model POSTRAG_CHAT_MODEL made (dropped
-- at a start that no longer sets it), 'admin' for an admin's choice (kept). Existing chat
-- defaults registered without any details (no context length, no capabilities) are the ones
-- POSTRAG_CHAT_MODEL made; every other existing default counts as an admin's choice.
-- depends: V2_5__row_level_security

DROP POLICY request_counters_owner ON request_counters;
TRUNCATE request_counters;
ALTER TABLE request_counters
    DROP CONSTRAINT request_counters_pkey,
    DROP COLUMN token_id,
    ADD COLUMN user_id bigint NOT NULL
        CONSTRAINT request_counters_user_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    ADD CONSTRAINT request_counters_pkey PRIMARY KEY (user_id, window_start);
CREATE POLICY request_counters_owner ON request_counters FOR ALL TO postrag_app
    USING (user_id = (SELECT postrag_user_id()))
    WITH CHECK (user_id = (SELECT postrag_user_id()));

-- `reserved_until`: when the last hold taken lapses. A process that died mid-answer never gives
-- its hold back; once every hold of the window has lapsed, the next one starts from zero.
ALTER TABLE llm_token_counters
    ADD COLUMN reserved bigint NOT NULL DEFAULT 0,
    ADD COLUMN reserved_until timestamptz,
    ADD CONSTRAINT llm_token_counters_reserved_check CHECK (reserved >= 0);

ALTER TABLE api_tokens
    ADD COLUMN parent_id bigint
        CONSTRAINT api_tokens_parent_id_fkey REFERENCES api_tokens (id) ON DELETE SET NULL;
-- "The tokens this one made" (revocation) and the FK's SET NULL.
CREATE INDEX api_tokens_parent_id_idx ON api_tokens (parent_id) WHERE parent_id IS NOT NULL;

ALTER TABLE llm_models ADD COLUMN default_source text;
UPDATE llm_models SET default_source = CASE
    WHEN kind = 'chat' AND context_length IS NULL AND capabilities = '{}'::jsonb
    THEN 'environment' ELSE 'admin' END
WHERE is_default;
ALTER TABLE llm_models
    ADD CONSTRAINT llm_models_default_source_check CHECK (
        (default_source IS NOT NULL) = is_default AND default_source IN ('environment', 'admin')
    );
