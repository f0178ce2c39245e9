-- Rollback of V1_8.
DROP TABLE jobs;
