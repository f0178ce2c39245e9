-- Undoes V2_6: request counters per token again (the minute windows are dropped), no
-- reservations, no token lineage, no default source.
ALTER TABLE llm_models
    DROP CONSTRAINT llm_models_default_source_check,
    DROP COLUMN default_source;

DROP INDEX api_tokens_parent_id_idx;
ALTER TABLE api_tokens DROP COLUMN parent_id;

ALTER TABLE llm_token_counters DROP COLUMN reserved, DROP COLUMN reserved_until;

DROP POLICY request_counters_owner ON request_counters;
TRUNCATE request_counters;
ALTER TABLE request_counters
    DROP CONSTRAINT request_counters_pkey,
    DROP COLUMN user_id,
    ADD COLUMN token_id bigint NOT NULL
        CONSTRAINT request_counters_token_id_fkey REFERENCES api_tokens (id) ON DELETE CASCADE,
    ADD CONSTRAINT request_counters_pkey PRIMARY KEY (token_id, window_start);
CREATE POLICY request_counters_owner ON request_counters FOR ALL TO postrag_app
    USING (token_id IN (SELECT id FROM api_tokens))
    WITH CHECK (token_id IN (SELECT id FROM api_tokens));
