-- V2_5: Row-Level Security on every user-owned table, as defence in depth under the app's own
-- owner filters.
--
-- Every pooled connection runs as the role postrag_app (NOLOGIN, NOBYPASSRLS, owns nothing),
-- and once the app knows who is asking, with postrag.user_id set to that user's id
-- (app/db/scope.py). With postrag.user_id unset, postrag_app sees no user-owned row at all. The
-- policies apply to postrag_app only, so work that is nobody's (migrations, workers' queue
-- bookkeeping, start-up, the CLI, token lookup before the token is known) runs as the connecting
-- role, which owns the tables.
--
-- Readability is defined once, on collections (mine or shared); documents, chunks, vectors and
-- the BM25 tables read through it, because a policy's subquery is itself filtered by the
-- policies of the tables it reads. Writes need ownership, in policies of their own, so that
-- reads plan only the read condition. `(SELECT postrag_user_id())` is evaluated once per
-- statement, not per row. Referential actions (ON DELETE CASCADE) and foreign-key checks are
-- not subject to RLS, as in any PostgreSQL. Each table's policies are named <table>_read,
-- _insert, _update and _delete, or <table>_owner for one rule for everything.
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
        'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO postrag_app', current_schema()
    );
END
$$;

-- Table by table: nothing on the migration bookkeeping, read-only on embedding spaces (workers
-- manage them as the owner). A later migration's table gets no access until it grants some.
GRANT SELECT, INSERT, UPDATE, DELETE ON
    users, api_tokens, llm_models, collections, documents, document_status_history,
    user_preferences, document_chunks, chunk_embeddings, chats, chat_messages, jobs,
    chunk_lexemes, collection_text_stats, collection_lexeme_stats, connector_tokens,
    request_counters, llm_token_counters, api_usage
TO postrag_app;
GRANT SELECT ON embedding_spaces TO postrag_app;

-- The acting user, or NULL when none is set (then no policy matches).
CREATE FUNCTION postrag_user_id() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT nullif(current_setting('postrag.user_id', true), '')::bigint
$$;

-- Whether the acting user is an admin. It runs as its owner (the tables' owner), so that the
-- policies on users can call it without recursing into themselves.
CREATE FUNCTION postrag_user_is_admin() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT EXISTS (SELECT 1 FROM users WHERE id = postrag_user_id() AND role = 'admin')
$$;

-- RLS on a table, with a read rule and a write rule (insert, update, delete).
CREATE FUNCTION pg_temp.read_write_policies(t text, readable text, writable text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY %I ON %I FOR SELECT TO postrag_app USING (%s)',
                   t || '_read', t, readable);
    EXECUTE format('CREATE POLICY %I ON %I FOR INSERT TO postrag_app WITH CHECK (%s)',
                   t || '_insert', t, writable);
    EXECUTE format('CREATE POLICY %I ON %I FOR UPDATE TO postrag_app USING (%s) WITH CHECK (%s)',
                   t || '_update', t, writable, writable);
    EXECUTE format('CREATE POLICY %I ON %I FOR DELETE TO postrag_app USING (%s)',
                   t || '_delete', t, writable);
END
$$;

-- RLS on a table, with one rule for reading and writing.
CREATE FUNCTION pg_temp.owner_policy(t text, mine text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY %I ON %I FOR ALL TO postrag_app USING (%s) WITH CHECK (%s)',
                   t || '_owner', t, mine, mine);
END
$$;

-- The policies, in PL/pgSQL: a top-level SELECT would print its rows when the migration runs.
DO $$
BEGIN
    -- Users see themselves; admins see and manage everyone (no one else can make an admin).
    PERFORM pg_temp.read_write_policies(
        'users',
        'id = (SELECT postrag_user_id()) OR (SELECT postrag_user_is_admin())',
        '(SELECT postrag_user_is_admin())'
    );
    -- The model registry: everyone reads it, admins change it. Its update rule lets everyone reach
    -- the rows (a preference locks its model FOR KEY SHARE, which takes the update rule) while only
    -- admins may write them.
    PERFORM pg_temp.read_write_policies(
        'llm_models',
        '(SELECT postrag_user_id()) IS NOT NULL',
        '(SELECT postrag_user_is_admin())'
    );
    ALTER POLICY llm_models_update ON llm_models USING ((SELECT postrag_user_id()) IS NOT NULL);

    -- Shared collections are readable by every user (not by nobody); only owners change them.
    PERFORM pg_temp.read_write_policies(
        'collections',
        'owner_id = (SELECT postrag_user_id())'
        ' OR (is_shared AND (SELECT postrag_user_id()) IS NOT NULL)',
        'owner_id = (SELECT postrag_user_id())'
    );
    PERFORM pg_temp.read_write_policies(
        'documents',
        'collection_id IN (SELECT id FROM collections)',
        'owner_id = (SELECT postrag_user_id())'
    );
    PERFORM pg_temp.read_write_policies(
        t,
        readable,
        'document_id IN (SELECT id FROM documents WHERE owner_id = (SELECT postrag_user_id()))'
    )
    FROM (VALUES
        ('document_status_history', 'document_id IN (SELECT id FROM documents)'),
        ('document_chunks', 'collection_id IN (SELECT id FROM collections)')
    ) AS v (t, readable);

    -- A vector is readable with its chunk. The chunk is looked up by primary key for each row the
    -- HNSW scan returns: an EXISTS here would be planned as a hash of every readable chunk id,
    -- built for each search.
    PERFORM pg_temp.read_write_policies(
        'chunk_embeddings',
        '(SELECT c.collection_id FROM document_chunks c WHERE c.id = chunk_id)'
        ' IN (SELECT id FROM collections)',
        '(SELECT d.owner_id FROM document_chunks c JOIN documents d ON d.id = c.document_id'
        ' WHERE c.id = chunk_id) = (SELECT postrag_user_id())'
    );

    -- The BM25 tables hold each collection's words: readable with the collection, written (by the
    -- chunk triggers) as its owner.
    PERFORM pg_temp.read_write_policies(
        t,
        'collection_id IN (SELECT id FROM collections)',
        'collection_id IN (SELECT id FROM collections WHERE owner_id = (SELECT postrag_user_id()))'
    )
    FROM unnest(ARRAY['chunk_lexemes', 'collection_text_stats', 'collection_lexeme_stats']) AS t;

    PERFORM pg_temp.owner_policy(t, mine)
    FROM (VALUES
        ('chats', 'owner_id = (SELECT postrag_user_id())'),
        ('chat_messages', 'chat_id IN (SELECT id FROM chats)'),
        ('user_preferences', 'user_id = (SELECT postrag_user_id())'),
        ('api_tokens', 'user_id = (SELECT postrag_user_id())'),
        ('connector_tokens', 'owner_id = (SELECT postrag_user_id())'),
        ('request_counters', 'token_id IN (SELECT id FROM api_tokens)'),
        ('llm_token_counters', 'user_id = (SELECT postrag_user_id())'),
        ('api_usage', 'user_id = (SELECT postrag_user_id())')
    ) AS v (t, mine);
END
$$;

-- Usage is yours (above); admins read everyone's (GET /api/v1/usage).
CREATE POLICY api_usage_admin_read ON api_usage FOR SELECT TO postrag_app
    USING ((SELECT postrag_user_is_admin()));

DROP FUNCTION pg_temp.read_write_policies(text, text, text);
DROP FUNCTION pg_temp.owner_policy(text, text);
