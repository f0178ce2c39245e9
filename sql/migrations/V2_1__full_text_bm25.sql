-- V2_1: full-text search with BM25 computed in SQL. Each chunk gets a tsvector (GIN-indexed, for
-- exact phrase and prefix matching) built with its collection's text-search configuration, and
-- its lexemes with their frequencies go into chunk_lexemes (the postings, looked up by lexeme).
-- Per collection, collection_text_stats (chunk count, total length) and collection_lexeme_stats
-- (document frequency per lexeme) hold what BM25's idf and length normalisation need, so a query
-- never counts over the corpus. Triggers keep all of it in step with inserts and deletes of
-- chunks (uploads, re-ingestion, document and collection deletion, cascades included) and with
-- a change of a collection's language.
-- depends: V1_9__ingestion

-- collection_id is denormalised from documents so that (a) tenancy filters need no join and (b)
-- the delete trigger knows a chunk's collection even when the document row is already gone
-- (cascades); documents never move between collections (a trigger below refuses it).
-- search_length is the chunk's BM25 length: its number of indexed (non-stop-word) tokens.
ALTER TABLE document_chunks
    ADD COLUMN collection_id bigint,
    ADD COLUMN search_vector tsvector,
    ADD COLUMN search_length integer;

UPDATE document_chunks c
SET collection_id = d.collection_id,
    search_vector = to_tsvector(col.language, c.text)
FROM documents d
JOIN collections col ON col.id = d.collection_id
WHERE d.id = c.document_id;

CREATE FUNCTION postrag_tsvector_length(v tsvector) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(sum(cardinality(positions)), 0)::integer FROM unnest(v)
$$;

UPDATE document_chunks SET search_length = postrag_tsvector_length(search_vector);

ALTER TABLE document_chunks
    ALTER COLUMN collection_id SET NOT NULL,
    ALTER COLUMN search_vector SET NOT NULL,
    ALTER COLUMN search_length SET NOT NULL;

CREATE INDEX document_chunks_collection_id_idx ON document_chunks (collection_id);
CREATE INDEX document_chunks_search_vector_idx ON document_chunks USING gin (search_vector);

-- The postings: one row per (chunk, lexeme). The primary key serves "postings of these lexemes in
-- these collections" as an index-only scan (and, in the C collation, prefix ranges); chunk_length
-- is repeated on each row so scoring never visits document_chunks. No foreign key: rows come and
-- go with their chunks through the triggers below, set-wise rather than one check per row.
CREATE TABLE chunk_lexemes (
    collection_id bigint   NOT NULL,
    lexeme        text     COLLATE "C" NOT NULL,
    chunk_id      bigint   NOT NULL,
    tf            smallint NOT NULL,
    chunk_length  integer  NOT NULL,
    CONSTRAINT chunk_lexemes_pkey PRIMARY KEY (collection_id, lexeme, chunk_id)
        INCLUDE (tf, chunk_length),
    CONSTRAINT chunk_lexemes_tf_check CHECK (tf >= 1),
    CONSTRAINT chunk_lexemes_chunk_length_check CHECK (chunk_length >= tf)
);
-- Deleting a chunk's postings.
CREATE INDEX chunk_lexemes_chunk_id_idx ON chunk_lexemes (chunk_id);

CREATE TABLE collection_text_stats (
    collection_id bigint NOT NULL
                  CONSTRAINT collection_text_stats_collection_id_fkey
                  REFERENCES collections (id) ON DELETE CASCADE,
    chunk_count   bigint NOT NULL,
    total_length  bigint NOT NULL,
    CONSTRAINT collection_text_stats_pkey PRIMARY KEY (collection_id),
    CONSTRAINT collection_text_stats_check CHECK (chunk_count >= 0 AND total_length >= 0)
);

CREATE TABLE collection_lexeme_stats (
    collection_id bigint NOT NULL
                  CONSTRAINT collection_lexeme_stats_collection_id_fkey
                  REFERENCES collections (id) ON DELETE CASCADE,
    lexeme        text   COLLATE "C" NOT NULL,
    df            bigint NOT NULL,
    CONSTRAINT collection_lexeme_stats_pkey PRIMARY KEY (collection_id, lexeme),
    CONSTRAINT collection_lexeme_stats_df_check CHECK (df >= 0)
);

-- Adds the postings and statistics of the given chunks (already holding their search_vector).
-- Every writer locks its collection's text-stats row first and then lexeme rows in sorted order,
-- so concurrent ingestion into one collection queues instead of deadlocking.
CREATE FUNCTION postrag_index_chunk_text(p_chunk_ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO collection_text_stats AS s (collection_id, chunk_count, total_length)
    SELECT c.collection_id, count(*), sum(c.search_length)
    FROM document_chunks c WHERE c.id = ANY (p_chunk_ids)
    GROUP BY c.collection_id ORDER BY c.collection_id
    ON CONFLICT (collection_id) DO UPDATE
        SET chunk_count = s.chunk_count + excluded.chunk_count,
            total_length = s.total_length + excluded.total_length;

    INSERT INTO chunk_lexemes (collection_id, lexeme, chunk_id, tf, chunk_length)
    SELECT c.collection_id, t.lexeme, c.id, cardinality(t.positions), c.search_length
    FROM document_chunks c CROSS JOIN LATERAL unnest(c.search_vector) t
    WHERE c.id = ANY (p_chunk_ids);

    INSERT INTO collection_lexeme_stats AS s (collection_id, lexeme, df)
    SELECT c.collection_id, t.lexeme, count(*)
    FROM document_chunks c CROSS JOIN LATERAL unnest(c.search_vector) t
    WHERE c.id = ANY (p_chunk_ids)
    GROUP BY c.collection_id, t.lexeme ORDER BY c.collection_id, t.lexeme COLLATE "C"
    ON CONFLICT (collection_id, lexeme) DO UPDATE SET df = s.df + excluded.df;
END
$$;

-- Fills collection_id, search_vector and search_length of a new chunk. The share lock on the
-- collection makes a concurrent change of its language wait for this transaction (and this one
-- wait for it), so no chunk is ever tokenised with a language its collection no longer has.
CREATE FUNCTION document_chunks_prepare_text() RETURNS trigger
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

CREATE FUNCTION document_chunks_index_text() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM postrag_index_chunk_text(ARRAY(SELECT id FROM new_chunks));
    RETURN NULL;
END
$$;

-- Takes deleted chunks out of the postings and statistics.
CREATE FUNCTION document_chunks_unindex_text() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM chunk_lexemes p USING old_chunks o WHERE p.chunk_id = o.id;

    UPDATE collection_text_stats s
    SET chunk_count = s.chunk_count - o.n, total_length = s.total_length - o.len
    FROM (
        SELECT collection_id, count(*) AS n, sum(search_length) AS len
        FROM old_chunks GROUP BY collection_id
    ) o
    WHERE s.collection_id = o.collection_id;

    -- Lock the lexeme rows in sorted order first (as postrag_index_chunk_text does).
    PERFORM 1 FROM collection_lexeme_stats s
    JOIN (SELECT DISTINCT o.collection_id, t.lexeme
          FROM old_chunks o CROSS JOIN LATERAL unnest(o.search_vector) t) o
      ON o.collection_id = s.collection_id AND o.lexeme = s.lexeme
    ORDER BY s.collection_id, s.lexeme FOR UPDATE OF s;
    UPDATE collection_lexeme_stats s SET df = s.df - o.n
    FROM (SELECT o.collection_id, t.lexeme, count(*) AS n
          FROM old_chunks o CROSS JOIN LATERAL unnest(o.search_vector) t
          GROUP BY o.collection_id, t.lexeme) o
    WHERE s.collection_id = o.collection_id AND s.lexeme = o.lexeme;
    DELETE FROM collection_lexeme_stats s
    USING (SELECT DISTINCT o.collection_id, t.lexeme
           FROM old_chunks o CROSS JOIN LATERAL unnest(o.search_vector) t) o
    WHERE s.collection_id = o.collection_id AND s.lexeme = o.lexeme AND s.df = 0;
    RETURN NULL;
END
$$;

CREATE TRIGGER document_chunks_prepare_text BEFORE INSERT ON document_chunks
    FOR EACH ROW EXECUTE FUNCTION document_chunks_prepare_text();
CREATE TRIGGER document_chunks_index_text AFTER INSERT ON document_chunks
    REFERENCING NEW TABLE AS new_chunks
    FOR EACH STATEMENT EXECUTE FUNCTION document_chunks_index_text();
CREATE TRIGGER document_chunks_unindex_text AFTER DELETE ON document_chunks
    REFERENCING OLD TABLE AS old_chunks
    FOR EACH STATEMENT EXECUTE FUNCTION document_chunks_unindex_text();

-- Chunk text and placement never change in place (re-ingestion replaces chunks), and documents
-- never move between collections: the postings and the denormalised collection_id rely on it.
CREATE FUNCTION postrag_reject_placement_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%: text and placement are immutable; replace the rows instead', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER document_chunks_reject_placement_update
    BEFORE UPDATE OF text, document_id, collection_id ON document_chunks
    FOR EACH ROW EXECUTE FUNCTION postrag_reject_placement_update();
CREATE TRIGGER documents_reject_placement_update
    BEFORE UPDATE OF collection_id ON documents
    FOR EACH ROW WHEN (OLD.collection_id IS DISTINCT FROM NEW.collection_id)
    EXECUTE FUNCTION postrag_reject_placement_update();

-- A collection's new language re-tokenises its chunks: postings and statistics are rebuilt. The
-- UPDATE of the collection row conflicts with the share lock chunk writers take on it, so this
-- never overlaps an ingestion into the same collection.
CREATE FUNCTION collections_reindex_text() RETURNS trigger
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
CREATE TRIGGER collections_reindex_text AFTER UPDATE OF language ON collections
    FOR EACH ROW WHEN (OLD.language IS DISTINCT FROM NEW.language)
    EXECUTE FUNCTION collections_reindex_text();

-- Chunks already stored (this migration on a populated database).
DO $$ BEGIN PERFORM postrag_index_chunk_text(ARRAY(SELECT id FROM document_chunks)); END $$;
