-- Undoes V2_14: documents and chunks lose their access sets (readable with their collection).
ALTER POLICY documents_read ON documents USING (collection_id IN (SELECT id FROM collections));
ALTER POLICY document_chunks_read ON document_chunks
    USING (collection_id IN (SELECT id FROM collections));
DROP FUNCTION postrag_access_sets();
DROP TRIGGER documents_share_access ON documents;
DROP FUNCTION documents_share_access();
DROP TRIGGER document_chunks_copy_access ON document_chunks;
DROP FUNCTION document_chunks_copy_access();
ALTER TABLE document_chunks DROP COLUMN access_set_id;
ALTER TABLE documents DROP COLUMN access_set_id;
DROP TABLE access_set_members;
DROP TABLE access_sets;
