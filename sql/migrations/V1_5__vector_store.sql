-- V1_5: the vector store. Chunks of documents, the embedding spaces they are embedded into, and
-- one embedding per (chunk, space) in a single untyped `vector` column. Each space gets its own
-- HNSW index: a partial expression index that casts the column to the space's dimension
-- (pgvector's documented way to keep several dimensions in one column). The index DDL lives in
-- create_embedding_space_index() below; the app calls it when it creates a space.
-- depends: V1_4__user_preferences

CREATE TABLE document_chunks (
    id           bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT document_chunks_pkey PRIMARY KEY,
    document_id  bigint      NOT NULL
                 CONSTRAINT document_chunks_document_id_fkey
                 REFERENCES documents (id) ON DELETE CASCADE,
    ordinal      integer     NOT NULL,
    text         text        NOT NULL,
    token_count  integer     NOT NULL,
    page         integer,
    char_start   integer     NOT NULL,
    char_end     integer     NOT NULL,
    heading_path text[]      NOT NULL DEFAULT '{}',
    metadata     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- Also serves "chunks of a document in order" and the FK's cascade.
    CONSTRAINT document_chunks_document_id_ordinal_key UNIQUE (document_id, ordinal),
    CONSTRAINT document_chunks_ordinal_check CHECK (ordinal >= 0),
    CONSTRAINT document_chunks_token_count_check CHECK (token_count >= 0),
    CONSTRAINT document_chunks_page_check CHECK (page >= 1),
    CONSTRAINT document_chunks_char_span_check CHECK (char_start >= 0 AND char_end >= char_start),
    CONSTRAINT document_chunks_metadata_check CHECK (jsonb_typeof(metadata) = 'object')
);

CREATE TABLE embedding_spaces (
    id                   bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT embedding_spaces_pkey PRIMARY KEY,
    embedding_model_id   bigint      NOT NULL
                         CONSTRAINT embedding_spaces_embedding_model_id_fkey
                         REFERENCES llm_models (id) ON DELETE RESTRICT,
    dimension            integer     NOT NULL,
    distance             text        NOT NULL DEFAULT 'cosine',
    hnsw_m               integer     NOT NULL DEFAULT 16,
    hnsw_ef_construction integer     NOT NULL DEFAULT 64,
    use_halfvec          boolean     NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT embedding_spaces_model_key
        UNIQUE (embedding_model_id, dimension, distance, use_halfvec),
    CONSTRAINT embedding_spaces_distance_check CHECK (distance IN ('cosine', 'l2', 'inner_product')),
    -- pgvector's HNSW limits: 2,000 dimensions for vector, 4,000 for halfvec.
    CONSTRAINT embedding_spaces_dimension_check CHECK (
        dimension >= 1 AND dimension <= CASE WHEN use_halfvec THEN 4000 ELSE 2000 END
    ),
    CONSTRAINT embedding_spaces_hnsw_m_check CHECK (hnsw_m BETWEEN 2 AND 100),
    CONSTRAINT embedding_spaces_hnsw_ef_construction_check
        CHECK (hnsw_ef_construction BETWEEN 4 AND 1000 AND hnsw_ef_construction >= 2 * hnsw_m)
);

CREATE TABLE chunk_embeddings (
    chunk_id  bigint NOT NULL
              CONSTRAINT chunk_embeddings_chunk_id_fkey
              REFERENCES document_chunks (id) ON DELETE CASCADE,
    space_id  bigint NOT NULL
              CONSTRAINT chunk_embeddings_space_id_fkey
              REFERENCES embedding_spaces (id) ON DELETE CASCADE,
    embedding vector NOT NULL,
    CONSTRAINT chunk_embeddings_pkey PRIMARY KEY (chunk_id, space_id)
);

-- The space FK's cascade and exact (non-index) scans of one space.
CREATE INDEX chunk_embeddings_space_id_idx ON chunk_embeddings (space_id);

-- Builds the HNSW index of one embedding space and returns its name. Queries must use the same
-- expression (embedding::vector(N) or ::halfvec(N)), operator and predicate (space_id = id) for
-- the planner to pick it. The cast also rejects embeddings of the wrong dimension on insert.
CREATE FUNCTION create_embedding_space_index(p_space_id bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    s          embedding_spaces;
    value_type text;
    opclass    text;
    index_name text;
BEGIN
    SELECT * INTO STRICT s FROM embedding_spaces WHERE id = p_space_id;
    value_type := CASE WHEN s.use_halfvec THEN 'halfvec' ELSE 'vector' END;
    opclass := value_type || CASE s.distance
        WHEN 'cosine' THEN '_cosine_ops'
        WHEN 'l2' THEN '_l2_ops'
        ELSE '_ip_ops'
    END;
    index_name := embedding_space_index_name(p_space_id);
    EXECUTE format(
        'CREATE INDEX IF NOT EXISTS %I ON chunk_embeddings USING hnsw ((embedding::%s(%s)) %s) '
        'WITH (m = %s, ef_construction = %s) WHERE space_id = %s',
        index_name, value_type, s.dimension, opclass, s.hnsw_m, s.hnsw_ef_construction, s.id
    );
    RETURN index_name;
END
$$;

CREATE FUNCTION embedding_space_index_name(p_space_id bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT format('chunk_embeddings_space_%s_hnsw_idx', p_space_id)
$$;

-- Drops a space's HNSW index (before a bulk load, or when the space goes away).
CREATE FUNCTION drop_embedding_space_index(p_space_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DROP INDEX IF EXISTS %I', embedding_space_index_name(p_space_id));
END
$$;
