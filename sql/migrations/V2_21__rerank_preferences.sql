-- V2_21: a user's reranking preferences (issue 22).
--
-- `rerank`: whether searches and chats rerank the fused hits when a reranker is configured
-- (POSTRAG_RERANK); a request's own `rerank` wins. `rerank_candidates`: how many fused hits are
-- reranked; NULL follows the server's POSTRAG_RERANK_CANDIDATES. The columns fall under the
-- table's existing grants and row-level policy.
-- depends: V2_20__chat_search_query

ALTER TABLE user_preferences
    ADD COLUMN rerank boolean NOT NULL DEFAULT true,
    ADD COLUMN rerank_candidates integer
        CONSTRAINT user_preferences_rerank_candidates_check
            CHECK (rerank_candidates BETWEEN 1 AND 200);
