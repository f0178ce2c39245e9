-- Rollback of V1_3.
DROP TABLE document_status_history;
DROP FUNCTION postrag_reject_update();
DROP TABLE documents;
DROP TABLE collections;
