-- Rollback of V1_5. Dropping chunk_embeddings drops every per-space HNSW index with it.
DROP FUNCTION drop_embedding_space_index(bigint);
DROP FUNCTION create_embedding_space_index(bigint);
DROP FUNCTION embedding_space_index_name(bigint);
DROP TABLE chunk_embeddings;
DROP TABLE embedding_spaces;
DROP TABLE document_chunks;
