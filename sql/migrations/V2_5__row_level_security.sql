-- V2_5: Row-Level Security on every user-owned table, as defence in depth under the app's own
-- owner filters.
--
-- Work done for a user runs as the role postrag_app (NOLOGIN, NOBYPASSRLS, not a table owner):
-- the app switches to it with SET ROLE once it knows who is asking, and sets postrag.user_id
-- to that user's id (app/db/scope.py); returning the connection to the pool resets both. The
-- policies below apply to postrag_app only, so work that is nobody's (migrations, the job queue's
-- bookkeeping, start-up, CLI administration, token lookup before the token is known) keeps
-- running as the connecting role, which owns the tables. With postrag.user_id unset,
-- postrag_app sees no user-owned row at all.
--
-- Readability is defined once, on collections (mine or shared); documents, chunks, vectors and
-- the BM25 tables read through it, because a policy's subquery is itself filtered by the
-- policies of the tables it reads. Writes need ownership, in policies of their own, so that
-- reads plan only the read condition. `(SELECT postrag_user_id())` is evaluated once per
-- statement, not per row. Referential actions (ON DELETE
-- CASCADE) and foreign-key checks are not subject to RLS, as in any PostgreSQL.
-- depends: V2_4__usage_limits

-- docker/init_schema.sh makes the role for a least-privileged owner; otherwise the connecting
-- role makes it (superusers, or roles with CREATEROLE as on managed services).
DO $$
DECLARE
    hint text := format(
        'as a superuser run: CREATE ROLE postrag_app NOLOGIN; GRANT postrag_app TO %I;'
        ' GRANT TEMPORARY ON DATABASE %I TO postrag_app;', current_user, current_database()
    );
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postrag_app') THEN
        BEGIN
            -- Roles are cluster-wide: another postrag database may create it at the same moment.
            CREATE ROLE postrag_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role % may not create the role postrag_app that row-level'
                    ' security needs', current_user USING HINT = hint;
        END;
    END IF;
    -- The connecting role must be able to SET ROLE to it (superusers always can).
    IF NOT pg_has_role(current_user, 'postrag_app', 'MEMBER') THEN
        BEGIN
            EXECUTE format('GRANT postrag_app TO %I', current_user);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'role % may not act as the role postrag_app', current_user
                USING HINT = hint;
        END;
    END IF;
    -- Chunks and vectors are written through temporary staging tables (COPY cannot write
    -- under RLS). Without the database's grant option this only warns; init_schema.sh grants.
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO postrag_app', current_database());
END
$$;

DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO postrag_app', current_schema());
    EXECUTE format(
        'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO postrag_app',
        current_schema()
    );
    EXECUTE format(
        'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO postrag_app', current_schema()
    );
    -- Tables that later migrations create get the same grants.
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES IN SCHEMA %I'
        ' GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO postrag_app',
        current_schema()
    );
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO postrag_app',
        current_schema()
    );
END
$$;

-- The acting user, or NULL when none is set (then no policy matches).
CREATE FUNCTION postrag_user_id() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT nullif(current_setting('postrag.user_id', true), '')::bigint
$$;

CREATE FUNCTION postrag_user_is_admin() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT EXISTS (SELECT 1 FROM users WHERE id = postrag_user_id() AND role = 'admin')
$$;

-- Shared collections are readable by every user (not by nobody); only owners change them.
ALTER TABLE collections ENABLE ROW LEVEL SECURITY;
CREATE POLICY collections_read ON collections FOR SELECT TO postrag_app
    USING (
        owner_id = (SELECT postrag_user_id())
        OR (is_shared AND (SELECT postrag_user_id()) IS NOT NULL)
    );
CREATE POLICY collections_insert ON collections FOR INSERT TO postrag_app
    WITH CHECK (owner_id = (SELECT postrag_user_id()));
CREATE POLICY collections_update ON collections FOR UPDATE TO postrag_app
    USING (owner_id = (SELECT postrag_user_id()))
    WITH CHECK (owner_id = (SELECT postrag_user_id()));
CREATE POLICY collections_delete ON collections FOR DELETE TO postrag_app
    USING (owner_id = (SELECT postrag_user_id()));

ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY documents_read ON documents FOR SELECT TO postrag_app
    USING (collection_id IN (SELECT id FROM collections));
CREATE POLICY documents_insert ON documents FOR INSERT TO postrag_app
    WITH CHECK (owner_id = (SELECT postrag_user_id()));
CREATE POLICY documents_update ON documents FOR UPDATE TO postrag_app
    USING (owner_id = (SELECT postrag_user_id()))
    WITH CHECK (owner_id = (SELECT postrag_user_id()));
CREATE POLICY documents_delete ON documents FOR DELETE TO postrag_app
    USING (owner_id = (SELECT postrag_user_id()));

ALTER TABLE document_status_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY document_status_history_read ON document_status_history FOR SELECT TO postrag_app
    USING (document_id IN (SELECT id FROM documents));
CREATE POLICY document_status_history_insert ON document_status_history FOR INSERT TO postrag_app
    WITH CHECK (document_id IN (
        SELECT id FROM documents WHERE owner_id = (SELECT postrag_user_id())
    ));
CREATE POLICY document_status_history_update ON document_status_history FOR UPDATE TO postrag_app
    USING (document_id IN (
        SELECT id FROM documents WHERE owner_id = (SELECT postrag_user_id())
    ))
    WITH CHECK (document_id IN (
        SELECT id FROM documents WHERE owner_id = (SELECT postrag_user_id())
    ));
CREATE POLICY document_status_history_delete ON document_status_history FOR DELETE TO postrag_app
    USING (document_id IN (
        SELECT id FROM documents WHERE owner_id = (SELECT postrag_user_id())
    ));

ALTER TABLE document_chunks ENABLE ROW LEVEL SECURITY;
CREATE POLICY document_chunks_read ON document_chunks FOR SELECT TO postrag_app
    USING (collection_id IN (SELECT id FROM collections));
CREATE POLICY document_chunks_insert ON document_chunks FOR INSERT TO postrag_app
    WITH CHECK (document_id IN (
        SELECT id FROM documents WHERE owner_id = (SELECT postrag_user_id())
    ));
CREATE POLICY document_chunks_update ON document_chunks FOR UPDATE TO postrag_app
    USING (document_id IN (
        SELECT id FROM documents WHERE owner_id = (SELECT postrag_user_id())
    ))
    WITH CHECK (document_id IN (
        SELECT id FROM documents WHERE owner_id = (SELECT postrag_user_id())
    ));
CREATE POLICY document_chunks_delete ON document_chunks FOR DELETE TO postrag_app
    USING (document_id IN (
        SELECT id FROM documents WHERE owner_id = (SELECT postrag_user_id())
    ));

-- A vector is readable with its chunk. The chunk is looked up by primary key for each row the
-- HNSW scan returns: an EXISTS here would be planned as a hash of every readable chunk id,
-- built for each search.
ALTER TABLE chunk_embeddings ENABLE ROW LEVEL SECURITY;
CREATE POLICY chunk_embeddings_read ON chunk_embeddings FOR SELECT TO postrag_app
    USING (
        (SELECT c.collection_id FROM document_chunks c WHERE c.id = chunk_id)
        IN (SELECT id FROM collections)
    );
CREATE POLICY chunk_embeddings_insert ON chunk_embeddings FOR INSERT TO postrag_app
    WITH CHECK ((
        SELECT d.owner_id FROM document_chunks c JOIN documents d ON d.id = c.document_id
        WHERE c.id = chunk_id
    ) = (SELECT postrag_user_id()));
CREATE POLICY chunk_embeddings_update ON chunk_embeddings FOR UPDATE TO postrag_app
    USING ((
        SELECT d.owner_id FROM document_chunks c JOIN documents d ON d.id = c.document_id
        WHERE c.id = chunk_id
    ) = (SELECT postrag_user_id()))
    WITH CHECK ((
        SELECT d.owner_id FROM document_chunks c JOIN documents d ON d.id = c.document_id
        WHERE c.id = chunk_id
    ) = (SELECT postrag_user_id()));
CREATE POLICY chunk_embeddings_delete ON chunk_embeddings FOR DELETE TO postrag_app
    USING ((
        SELECT d.owner_id FROM document_chunks c JOIN documents d ON d.id = c.document_id
        WHERE c.id = chunk_id
    ) = (SELECT postrag_user_id()));

-- The BM25 tables hold each collection's words: readable with the collection, written (by the
-- chunk triggers) as its owner.
ALTER TABLE chunk_lexemes ENABLE ROW LEVEL SECURITY;
CREATE POLICY chunk_lexemes_read ON chunk_lexemes FOR SELECT TO postrag_app
    USING (collection_id IN (SELECT id FROM collections));
CREATE POLICY chunk_lexemes_insert ON chunk_lexemes FOR INSERT TO postrag_app
    WITH CHECK (collection_id IN (
        SELECT id FROM collections WHERE owner_id = (SELECT postrag_user_id())
    ));
CREATE POLICY chunk_lexemes_update ON chunk_lexemes FOR UPDATE TO postrag_app
    USING (collection_id IN (
        SELECT id FROM collections WHERE owner_id = (SELECT postrag_user_id())
    ))
    WITH CHECK (collection_id IN (
        SELECT id FROM collections WHERE owner_id = (SELECT postrag_user_id())
    ));
CREATE POLICY chunk_lexemes_delete ON chunk_lexemes FOR DELETE TO postrag_app
    USING (collection_id IN (
        SELECT id FROM collections WHERE owner_id = (SELECT postrag_user_id())
    ));

ALTER TABLE collection_text_stats ENABLE ROW LEVEL SECURITY;
CREATE POLICY collection_text_stats_read ON collection_text_stats FOR SELECT TO postrag_app
    USING (collection_id IN (SELECT id FROM collections));
CREATE POLICY collection_text_stats_insert ON collection_text_stats FOR INSERT TO postrag_app
    WITH CHECK (collection_id IN (
        SELECT id FROM collections WHERE owner_id = (SELECT postrag_user_id())
    ));
CREATE POLICY collection_text_stats_update ON collection_text_stats FOR UPDATE TO postrag_app
    USING (collection_id IN (
        SELECT id FROM collections WHERE owner_id = (SELECT postrag_user_id())
    ))
    WITH CHECK (collection_id IN (
        SELECT id FROM collections WHERE owner_id = (SELECT postrag_user_id())
    ));
CREATE POLICY collection_text_stats_delete ON collection_text_stats FOR DELETE TO postrag_app
    USING (collection_id IN (
        SELECT id FROM collections WHERE owner_id = (SELECT postrag_user_id())
    ));

ALTER TABLE collection_lexeme_stats ENABLE ROW LEVEL SECURITY;
CREATE POLICY collection_lexeme_stats_read ON collection_lexeme_stats FOR SELECT TO postrag_app
    USING (collection_id IN (SELECT id FROM collections));
CREATE POLICY collection_lexeme_stats_insert ON collection_lexeme_stats FOR INSERT TO postrag_app
    WITH CHECK (collection_id IN (
        SELECT id FROM collections WHERE owner_id = (SELECT postrag_user_id())
    ));
CREATE POLICY collection_lexeme_stats_update ON collection_lexeme_stats FOR UPDATE TO postrag_app
    USING (collection_id IN (
        SELECT id FROM collections WHERE owner_id = (SELECT postrag_user_id())
    ))
    WITH CHECK (collection_id IN (
        SELECT id FROM collections WHERE owner_id = (SELECT postrag_user_id())
    ));
CREATE POLICY collection_lexeme_stats_delete ON collection_lexeme_stats FOR DELETE TO postrag_app
    USING (collection_id IN (
        SELECT id FROM collections WHERE owner_id = (SELECT postrag_user_id())
    ));

ALTER TABLE chats ENABLE ROW LEVEL SECURITY;
CREATE POLICY chats_owner ON chats FOR ALL TO postrag_app
    USING (owner_id = (SELECT postrag_user_id()))
    WITH CHECK (owner_id = (SELECT postrag_user_id()));

ALTER TABLE chat_messages ENABLE ROW LEVEL SECURITY;
CREATE POLICY chat_messages_owner ON chat_messages FOR ALL TO postrag_app
    USING (chat_id IN (SELECT id FROM chats)) WITH CHECK (chat_id IN (SELECT id FROM chats));

ALTER TABLE user_preferences ENABLE ROW LEVEL SECURITY;
CREATE POLICY user_preferences_owner ON user_preferences FOR ALL TO postrag_app
    USING (user_id = (SELECT postrag_user_id())) WITH CHECK (user_id = (SELECT postrag_user_id()));

ALTER TABLE api_tokens ENABLE ROW LEVEL SECURITY;
CREATE POLICY api_tokens_owner ON api_tokens FOR ALL TO postrag_app
    USING (user_id = (SELECT postrag_user_id())) WITH CHECK (user_id = (SELECT postrag_user_id()));

ALTER TABLE connector_tokens ENABLE ROW LEVEL SECURITY;
CREATE POLICY connector_tokens_owner ON connector_tokens FOR ALL TO postrag_app
    USING (owner_id = (SELECT postrag_user_id()))
    WITH CHECK (owner_id = (SELECT postrag_user_id()));

ALTER TABLE request_counters ENABLE ROW LEVEL SECURITY;
CREATE POLICY request_counters_owner ON request_counters FOR ALL TO postrag_app
    USING (token_id IN (SELECT id FROM api_tokens))
    WITH CHECK (token_id IN (SELECT id FROM api_tokens));

ALTER TABLE llm_token_counters ENABLE ROW LEVEL SECURITY;
CREATE POLICY llm_token_counters_owner ON llm_token_counters FOR ALL TO postrag_app
    USING (user_id = (SELECT postrag_user_id())) WITH CHECK (user_id = (SELECT postrag_user_id()));

-- Usage is yours; admins read everyone's (GET /api/v1/usage).
ALTER TABLE api_usage ENABLE ROW LEVEL SECURITY;
CREATE POLICY api_usage_owner ON api_usage FOR ALL TO postrag_app
    USING (user_id = (SELECT postrag_user_id())) WITH CHECK (user_id = (SELECT postrag_user_id()));

CREATE POLICY api_usage_admin_read ON api_usage FOR SELECT TO postrag_app
    USING ((SELECT postrag_user_is_admin()));
