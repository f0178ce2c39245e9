-- Undoes V2_10: shares are gone, and the policies are V2_5's again (only owners write).
DROP TABLE collection_shares;

ALTER POLICY collections_read ON collections USING (
    owner_id = (SELECT postrag_user_id()) OR (is_shared AND (SELECT postrag_user_id()) IS NOT NULL)
);
ALTER POLICY documents_insert ON documents WITH CHECK (owner_id = (SELECT postrag_user_id()));
ALTER POLICY documents_update ON documents
    USING (owner_id = (SELECT postrag_user_id())) WITH CHECK (owner_id = (SELECT postrag_user_id()));
ALTER POLICY documents_delete ON documents USING (owner_id = (SELECT postrag_user_id()));

DO $$
DECLARE
    t text;
    writable text;
BEGIN
    FOR t, writable IN VALUES
        ('document_status_history', 'document_id IN (SELECT id FROM documents'
            ' WHERE owner_id = (SELECT postrag_user_id()))'),
        ('document_chunks', 'document_id IN (SELECT id FROM documents'
            ' WHERE owner_id = (SELECT postrag_user_id()))'),
        ('chunk_embeddings', '(SELECT d.owner_id FROM document_chunks c JOIN documents d'
            ' ON d.id = c.document_id WHERE c.id = chunk_id) = (SELECT postrag_user_id())'),
        ('chunk_lexemes', 'collection_id IN (SELECT id FROM collections'
            ' WHERE owner_id = (SELECT postrag_user_id()))'),
        ('collection_text_stats', 'collection_id IN (SELECT id FROM collections'
            ' WHERE owner_id = (SELECT postrag_user_id()))'),
        ('collection_lexeme_stats', 'collection_id IN (SELECT id FROM collections'
            ' WHERE owner_id = (SELECT postrag_user_id()))')
    LOOP
        EXECUTE format('ALTER POLICY %I ON %I WITH CHECK (%s)', t || '_insert', t, writable);
        EXECUTE format('ALTER POLICY %I ON %I USING (%s) WITH CHECK (%s)',
                       t || '_update', t, writable, writable);
        EXECUTE format('ALTER POLICY %I ON %I USING (%s)', t || '_delete', t, writable);
    END LOOP;
END
$$;

DROP FUNCTION postrag_writable_collections();
DROP FUNCTION postrag_shared_collections(boolean);
