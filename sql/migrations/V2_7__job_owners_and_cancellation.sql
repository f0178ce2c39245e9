-- V2_7: an ingestion job knows its document and that document's owner.
-- - Fair claims: workers take the due job of the owner with the fewest running jobs first, so
--   one user's many or big uploads never starve another's (app/repositories/jobs.py).
-- - Cancellation: the job goes with its document (ON DELETE CASCADE, also when a collection or a
--   user is deleted), and deleting a running job notifies the channel postrag_job_cancelled
--   with its id, so that the worker running it stops within seconds instead of finishing work
--   nobody will see.
-- Other jobs (embedding a space) have neither.
-- depends: V2_6__per_user_limits_token_lineage

ALTER TABLE jobs
    ADD COLUMN document_id bigint
        CONSTRAINT jobs_document_id_fkey REFERENCES documents (id) ON DELETE CASCADE,
    ADD COLUMN owner_id bigint
        CONSTRAINT jobs_owner_id_fkey REFERENCES users (id) ON DELETE CASCADE;

UPDATE jobs j SET document_id = d.id, owner_id = d.owner_id
FROM documents d
WHERE j.kind = 'ingest_document' AND d.id = (j.payload ->> 'document_id')::bigint;

CREATE INDEX jobs_document_id_idx ON jobs (document_id);
-- Counting an owner's running jobs when claiming.
CREATE INDEX jobs_owner_id_state_idx ON jobs (owner_id, state);

CREATE FUNCTION postrag_notify_job_cancelled() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('postrag_job_cancelled', OLD.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_cancelled AFTER DELETE ON jobs
    FOR EACH ROW WHEN (OLD.state = 'running') EXECUTE FUNCTION postrag_notify_job_cancelled();
