-- Rollback of V2_25. Collections in cjk go back to english (their chunks re-tokenised by the
-- language-change trigger while it still knows cjk), then the V2_1 functions come back.
UPDATE collections SET language = 'english'
WHERE language::oid IN (SELECT oid FROM pg_ts_config WHERE cfgname = 'cjk');

CREATE OR REPLACE FUNCTION document_chunks_prepare_text() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT d.collection_id, to_tsvector(col.language, NEW.text)
    INTO STRICT NEW.collection_id, NEW.search_vector
    FROM documents d JOIN collections col ON col.id = d.collection_id
    WHERE d.id = NEW.document_id
    FOR SHARE OF col;
    NEW.search_length := postrag_tsvector_length(NEW.search_vector);
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION collections_reindex_text() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM chunk_lexemes WHERE collection_id = NEW.id;
    DELETE FROM collection_lexeme_stats WHERE collection_id = NEW.id;
    DELETE FROM collection_text_stats WHERE collection_id = NEW.id;
    UPDATE document_chunks SET search_vector = to_tsvector(NEW.language, text)
    WHERE collection_id = NEW.id;
    UPDATE document_chunks SET search_length = postrag_tsvector_length(search_vector)
    WHERE collection_id = NEW.id;
    PERFORM postrag_index_chunk_text(ARRAY(
        SELECT id FROM document_chunks WHERE collection_id = NEW.id
    ));
    RETURN NULL;
END
$$;

DROP FUNCTION postrag_prefix_tsquery(regconfig, text);
DROP FUNCTION postrag_tsvector(regconfig, text);
DROP FUNCTION postrag_search_text(regconfig, text);
DROP FUNCTION postrag_is_cjk(regconfig);
DROP FUNCTION postrag_cjk_text(text);
DROP TEXT SEARCH CONFIGURATION cjk;
