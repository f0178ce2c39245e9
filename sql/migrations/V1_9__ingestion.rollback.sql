-- Rollback of V1_9.
ALTER TABLE documents
    DROP CONSTRAINT documents_failed_stage_check,
    DROP CONSTRAINT documents_title_check,
    DROP COLUMN failed_stage,
    DROP COLUMN title;
DROP INDEX embedding_spaces_ready_idx;
ALTER TABLE embedding_spaces
    DROP CONSTRAINT embedding_spaces_state_check,
    DROP COLUMN ready_at,
    DROP COLUMN state;
