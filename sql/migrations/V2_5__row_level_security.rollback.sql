-- Undoes V2_5: policies, RLS and postrag_app's privileges in this database. The role itself
-- stays: roles are cluster-wide and other databases may use it.
DROP POLICY collections_read ON collections;
DROP POLICY collections_insert ON collections;
DROP POLICY collections_update ON collections;
DROP POLICY collections_delete ON collections;
DROP POLICY documents_read ON documents;
DROP POLICY documents_insert ON documents;
DROP POLICY documents_update ON documents;
DROP POLICY documents_delete ON documents;
DROP POLICY document_status_history_read ON document_status_history;
DROP POLICY document_status_history_insert ON document_status_history;
DROP POLICY document_status_history_update ON document_status_history;
DROP POLICY document_status_history_delete ON document_status_history;
DROP POLICY document_chunks_read ON document_chunks;
DROP POLICY document_chunks_insert ON document_chunks;
DROP POLICY document_chunks_update ON document_chunks;
DROP POLICY document_chunks_delete ON document_chunks;
DROP POLICY chunk_embeddings_read ON chunk_embeddings;
DROP POLICY chunk_embeddings_insert ON chunk_embeddings;
DROP POLICY chunk_embeddings_update ON chunk_embeddings;
DROP POLICY chunk_embeddings_delete ON chunk_embeddings;
DROP POLICY chunk_lexemes_read ON chunk_lexemes;
DROP POLICY chunk_lexemes_insert ON chunk_lexemes;
DROP POLICY chunk_lexemes_update ON chunk_lexemes;
DROP POLICY chunk_lexemes_delete ON chunk_lexemes;
DROP POLICY collection_text_stats_read ON collection_text_stats;
DROP POLICY collection_text_stats_insert ON collection_text_stats;
DROP POLICY collection_text_stats_update ON collection_text_stats;
DROP POLICY collection_text_stats_delete ON collection_text_stats;
DROP POLICY collection_lexeme_stats_read ON collection_lexeme_stats;
DROP POLICY collection_lexeme_stats_insert ON collection_lexeme_stats;
DROP POLICY collection_lexeme_stats_update ON collection_lexeme_stats;
DROP POLICY collection_lexeme_stats_delete ON collection_lexeme_stats;
DROP POLICY chats_owner ON chats;
DROP POLICY chat_messages_owner ON chat_messages;
DROP POLICY user_preferences_owner ON user_preferences;
DROP POLICY api_tokens_owner ON api_tokens;
DROP POLICY connector_tokens_owner ON connector_tokens;
DROP POLICY request_counters_owner ON request_counters;
DROP POLICY llm_token_counters_owner ON llm_token_counters;
DROP POLICY api_usage_owner ON api_usage;
DROP POLICY api_usage_admin_read ON api_usage;
ALTER TABLE collections DISABLE ROW LEVEL SECURITY;
ALTER TABLE documents DISABLE ROW LEVEL SECURITY;
ALTER TABLE document_status_history DISABLE ROW LEVEL SECURITY;
ALTER TABLE document_chunks DISABLE ROW LEVEL SECURITY;
ALTER TABLE chunk_embeddings DISABLE ROW LEVEL SECURITY;
ALTER TABLE chunk_lexemes DISABLE ROW LEVEL SECURITY;
ALTER TABLE collection_text_stats DISABLE ROW LEVEL SECURITY;
ALTER TABLE collection_lexeme_stats DISABLE ROW LEVEL SECURITY;
ALTER TABLE chats DISABLE ROW LEVEL SECURITY;
ALTER TABLE chat_messages DISABLE ROW LEVEL SECURITY;
ALTER TABLE user_preferences DISABLE ROW LEVEL SECURITY;
ALTER TABLE api_tokens DISABLE ROW LEVEL SECURITY;
ALTER TABLE connector_tokens DISABLE ROW LEVEL SECURITY;
ALTER TABLE request_counters DISABLE ROW LEVEL SECURITY;
ALTER TABLE llm_token_counters DISABLE ROW LEVEL SECURITY;
ALTER TABLE api_usage DISABLE ROW LEVEL SECURITY;
DROP FUNCTION postrag_user_is_admin();
DROP FUNCTION postrag_user_id();
DO $$
BEGIN
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE ALL ON TABLES FROM postrag_app',
        current_schema()
    );
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE ALL ON SEQUENCES FROM postrag_app',
        current_schema()
    );
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM postrag_app', current_schema());
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM postrag_app', current_schema());
    EXECUTE format('REVOKE ALL ON SCHEMA %I FROM postrag_app', current_schema());
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM postrag_app', current_database());
END
$$;
