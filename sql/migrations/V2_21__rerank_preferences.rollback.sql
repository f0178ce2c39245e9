-- Undoes V2_21: preferences forget reranking.
ALTER TABLE user_preferences DROP COLUMN rerank_candidates, DROP COLUMN rerank;
