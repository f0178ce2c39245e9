-- V1_9: what background ingestion needs beyond the baseline. Embedding spaces get a state, so
-- a new embedding model can be filled in the background while search keeps using the old space
-- until the new one is ready; documents get a title (for the embedder's prefix) and the stage a
-- failure happened in.
-- depends: V1_8__jobs

ALTER TABLE embedding_spaces
    ADD COLUMN state text NOT NULL DEFAULT 'building',
    ADD COLUMN ready_at timestamptz,
    ADD CONSTRAINT embedding_spaces_state_check
        CHECK (state IN ('building', 'ready', 'retired'));

-- Search uses the newest ready space.
CREATE INDEX embedding_spaces_ready_idx ON embedding_spaces (ready_at DESC) WHERE state = 'ready';

ALTER TABLE documents
    ADD COLUMN title text NOT NULL DEFAULT '',
    ADD COLUMN failed_stage text,
    ADD CONSTRAINT documents_title_check CHECK (char_length(title) <= 500),
    ADD CONSTRAINT documents_failed_stage_check
        CHECK (failed_stage IN ('queued', 'extracting', 'chunking', 'embedding'));
