-- Rollback of V1_2.
DROP TABLE llm_models;
