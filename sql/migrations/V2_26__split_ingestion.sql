-- V2_26: a big document is embedded by every worker (issue 23), not by one job alone.
--
-- The ingestion job of a document with more chunks than POSTRAG_SPLIT_CHUNKS stores its chunks
-- here without vectors (`split_chunks`, under one `document_splits` row), then queues
-- `embed_range` jobs for consecutive ranges of them that any worker takes. Each range writes its
-- vectors into its drafts batch by batch and counts them off `chunks_left` in the same
-- transaction; the transaction that brings it to 0 (the split row's lock makes it exactly one)
-- replaces the document's chunks and vectors with the drafts and drops the split. Until then the
-- document keeps its previous complete set of chunks. A new ingestion of the document (reindex,
-- re-upload, a source's new version), a failed range or the document's deletion drops the split:
-- a range whose split is gone writes nothing. Both tables are the document's under row-level
-- security, written by its owner (the workers act as them) and dropped by its editors too.
-- depends: V2_25__cjk_fulltext

CREATE TABLE document_splits (
    id          bigint      GENERATED ALWAYS AS IDENTITY CONSTRAINT document_splits_pkey PRIMARY KEY,
    document_id bigint      NOT NULL
        CONSTRAINT document_splits_document_id_fkey REFERENCES documents (id) ON DELETE CASCADE,
    -- the space its vectors are for: only workers whose model makes that space take its ranges
    space_id    bigint      NOT NULL
        CONSTRAINT document_splits_space_id_fkey REFERENCES embedding_spaces (id) ON DELETE CASCADE,
    title       text        NOT NULL,  -- what the embedder reads before each chunk
    chunks_left integer     NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT document_splits_chunks_left_check CHECK (chunks_left >= 0)
);
-- One split under way per document.
CREATE UNIQUE INDEX document_splits_document_id_key ON document_splits (document_id);
CREATE INDEX document_splits_space_id_idx ON document_splits (space_id);

CREATE TABLE split_chunks (
    split_id     bigint  NOT NULL
        CONSTRAINT split_chunks_split_id_fkey REFERENCES document_splits (id) ON DELETE CASCADE,
    ordinal      integer NOT NULL,
    text         text    NOT NULL,
    token_count  integer NOT NULL,
    page         integer,
    char_start   integer NOT NULL,
    char_end     integer NOT NULL,
    heading_path text[]  NOT NULL,
    metadata     jsonb   NOT NULL,
    embedding    vector,  -- NULL until its range embeds it
    CONSTRAINT split_chunks_pkey PRIMARY KEY (split_id, ordinal)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON document_splits, split_chunks TO postrag_app;

ALTER TABLE document_splits ENABLE ROW LEVEL SECURITY;
CREATE POLICY document_splits_owner ON document_splits FOR ALL TO postrag_app
    USING (document_id IN (SELECT d.id FROM documents d
                           WHERE d.collection_id = ANY ((SELECT postrag_writable_collections())::bigint[])))
    WITH CHECK (document_id IN (SELECT d.id FROM documents d
                                WHERE d.owner_id = (SELECT postrag_user_id())));
ALTER TABLE split_chunks ENABLE ROW LEVEL SECURITY;
CREATE POLICY split_chunks_owner ON split_chunks FOR ALL TO postrag_app
    USING (split_id IN (SELECT id FROM document_splits))
    WITH CHECK (split_id IN (SELECT id FROM document_splits));
