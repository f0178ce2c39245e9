-- V2_10: a collection shared with a user or a group, as a reader or an editor (issue 18).
--
-- Besides its owner and, when is_shared, every user, a collection is readable by whoever a share
-- names: the user, or any member of the group (from the provider's groups claim or an admin's
-- membership, V2_9). An `editor` may also add, reindex and delete its documents; only the owner
-- (or an admin) changes the collection or its shares. A document keeps the collection owner as
-- its owner whoever uploads it, so that ingestion, quotas and the job queue work as before.
--
-- The policies of V2_5 read the shares through postrag_shared_collections(), which runs as the
-- tables' owner: a policy on collections that read collection_shares under RLS, whose own policy
-- reads collections, would recurse. Writes by an editor reach the chunks, vectors and BM25 tables
-- through triggers and cascades, so their write rules name the writable collections too.
-- depends: V2_9__groups

CREATE TABLE collection_shares (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    collection_id bigint NOT NULL
        CONSTRAINT collection_shares_collection_id_fkey REFERENCES collections (id) ON DELETE CASCADE,
    user_id bigint
        CONSTRAINT collection_shares_user_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    group_id bigint
        CONSTRAINT collection_shares_group_id_fkey REFERENCES groups (id) ON DELETE CASCADE,
    role text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT collection_shares_role_check CHECK (role IN ('reader', 'editor')),
    CONSTRAINT collection_shares_principal_check CHECK ((user_id IS NULL) <> (group_id IS NULL)),
    CONSTRAINT collection_shares_user_key UNIQUE (collection_id, user_id),
    CONSTRAINT collection_shares_group_key UNIQUE (collection_id, group_id)
);
-- What is shared with a user, and with a group, read at every statement under RLS.
CREATE INDEX collection_shares_user_id_idx ON collection_shares (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX collection_shares_group_id_idx ON collection_shares (group_id)
    WHERE group_id IS NOT NULL;

GRANT SELECT, INSERT, UPDATE, DELETE ON collection_shares TO postrag_app;

-- Ids of the collections shared with the acting user, directly or through a group; with
-- editor_only, those where the share makes them an editor. PL/pgSQL keeps its query's plan for
-- the session, and the policies call it as an InitPlan, `= ANY ((SELECT ...)::bigint[])`, once for each
-- table a statement reads: a set-returning SQL function was planned again at every call and
-- made a hybrid search 1.2 ms slower.
CREATE FUNCTION postrag_shared_collections(editor_only boolean) RETURNS bigint[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    RETURN ARRAY(
        SELECT s.collection_id FROM collection_shares s
        WHERE (s.user_id = postrag_user_id()
               OR s.group_id IN (SELECT m.group_id FROM group_members m
                                 WHERE m.user_id = postrag_user_id()))
          AND (NOT editor_only OR s.role = 'editor')
    );
END
$$;

-- Ids of the collections whose documents the acting user may write: owned, or shared with them
-- as an editor.
CREATE FUNCTION postrag_writable_collections() RETURNS bigint[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    RETURN ARRAY(SELECT id FROM collections WHERE owner_id = postrag_user_id())
        || postrag_shared_collections(true);
END
$$;

REVOKE ALL ON FUNCTION postrag_shared_collections(boolean), postrag_writable_collections()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION postrag_shared_collections(boolean), postrag_writable_collections()
    TO postrag_app;

ALTER POLICY collections_read ON collections USING (
    owner_id = (SELECT postrag_user_id())
    OR (is_shared AND (SELECT postrag_user_id()) IS NOT NULL)
    OR id = ANY ((SELECT postrag_shared_collections(false))::bigint[])
);

-- Documents: written by the collection's owner and its editors. A document is owned by the
-- collection's owner, or by the user who wrote it: no editor makes one someone else's (the
-- worker that ingests it acts as its owner).
ALTER POLICY documents_insert ON documents WITH CHECK (
    collection_id = ANY ((SELECT postrag_writable_collections())::bigint[])
    AND owner_id IN ((SELECT postrag_user_id()),
                     (SELECT c.owner_id FROM collections c WHERE c.id = collection_id))
);
ALTER POLICY documents_update ON documents
    USING (collection_id = ANY ((SELECT postrag_writable_collections())::bigint[]))
    WITH CHECK (
        collection_id = ANY ((SELECT postrag_writable_collections())::bigint[])
        AND owner_id IN ((SELECT postrag_user_id()),
                         (SELECT c.owner_id FROM collections c WHERE c.id = collection_id))
    );
ALTER POLICY documents_delete ON documents
    USING (collection_id = ANY ((SELECT postrag_writable_collections())::bigint[]));

DO $$
DECLARE
    t text;
    writable text;
BEGIN
    FOR t, writable IN VALUES
        ('document_status_history', 'document_id IN (SELECT d.id FROM documents d'
            ' WHERE d.collection_id = ANY ((SELECT postrag_writable_collections())::bigint[]))'),
        ('document_chunks', 'collection_id = ANY ((SELECT postrag_writable_collections())::bigint[])'),
        ('chunk_embeddings', '(SELECT c.collection_id FROM document_chunks c WHERE c.id = chunk_id)'
            ' = ANY ((SELECT postrag_writable_collections())::bigint[])'),
        ('chunk_lexemes', 'collection_id = ANY ((SELECT postrag_writable_collections())::bigint[])'),
        ('collection_text_stats', 'collection_id = ANY ((SELECT postrag_writable_collections())::bigint[])'),
        ('collection_lexeme_stats', 'collection_id = ANY ((SELECT postrag_writable_collections())::bigint[])')
    LOOP
        EXECUTE format('ALTER POLICY %I ON %I WITH CHECK (%s)', t || '_insert', t, writable);
        EXECUTE format('ALTER POLICY %I ON %I USING (%s) WITH CHECK (%s)',
                       t || '_update', t, writable, writable);
        EXECUTE format('ALTER POLICY %I ON %I USING (%s)', t || '_delete', t, writable);
    END LOOP;
END
$$;

-- Shares: the collection's owner and admins manage them; a user reads those naming them or one
-- of their groups (the application's own reads of shares go through its queries).
ALTER TABLE collection_shares ENABLE ROW LEVEL SECURITY;
CREATE POLICY collection_shares_read ON collection_shares FOR SELECT TO postrag_app USING (
    collection_id IN (SELECT id FROM collections WHERE owner_id = (SELECT postrag_user_id()))
    OR user_id = (SELECT postrag_user_id())
    OR group_id IN (SELECT m.group_id FROM group_members m
                    WHERE m.user_id = (SELECT postrag_user_id()))
    OR (SELECT postrag_user_is_admin())
);
CREATE POLICY collection_shares_write ON collection_shares FOR ALL TO postrag_app
    USING (
        collection_id IN (SELECT id FROM collections WHERE owner_id = (SELECT postrag_user_id()))
        OR (SELECT postrag_user_is_admin())
    )
    WITH CHECK (
        collection_id IN (SELECT id FROM collections WHERE owner_id = (SELECT postrag_user_id()))
        OR (SELECT postrag_user_is_admin())
    );
