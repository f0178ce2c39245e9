-- Rollback of V1_1. The vector extension stays: it may be owned by another role (see
-- docker/init_schema.sh) and other schemas in the database may use it.
DROP TABLE api_tokens;
DROP TABLE users;
DROP FUNCTION postrag_set_updated_at();
