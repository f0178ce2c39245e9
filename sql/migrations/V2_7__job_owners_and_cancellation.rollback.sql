-- Undoes V2_7: jobs forget their document and owner, and deleting one notifies nobody.
DROP TRIGGER jobs_notify_cancelled ON jobs;
DROP FUNCTION postrag_notify_job_cancelled();
DROP INDEX jobs_owner_id_state_idx;
DROP INDEX jobs_document_id_idx;
ALTER TABLE jobs DROP COLUMN owner_id, DROP COLUMN document_id;
