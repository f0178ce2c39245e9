-- Rollback of V2_1.
DROP TRIGGER collections_reindex_text ON collections;
DROP FUNCTION collections_reindex_text();
DROP TRIGGER documents_reject_placement_update ON documents;
DROP TRIGGER document_chunks_reject_placement_update ON document_chunks;
DROP FUNCTION postrag_reject_placement_update();
DROP TRIGGER document_chunks_unindex_text ON document_chunks;
DROP TRIGGER document_chunks_index_text ON document_chunks;
DROP TRIGGER document_chunks_prepare_text ON document_chunks;
DROP FUNCTION document_chunks_unindex_text();
DROP FUNCTION document_chunks_index_text();
DROP FUNCTION document_chunks_prepare_text();
DROP FUNCTION postrag_index_chunk_text(bigint[]);
DROP TABLE collection_lexeme_stats;
DROP TABLE collection_text_stats;
DROP TABLE chunk_lexemes;
DROP INDEX document_chunks_search_vector_idx;
DROP INDEX document_chunks_collection_id_idx;
ALTER TABLE document_chunks
    DROP COLUMN search_length, DROP COLUMN search_vector, DROP COLUMN collection_id;
DROP FUNCTION postrag_tsvector_length(tsvector);
