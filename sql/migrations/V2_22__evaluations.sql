-- V2_22: evaluation sets and their runs (issue 22), to prove that a change to search helped.
--
-- A set belongs to a user and is about one collection: its queries (text, an optional external
-- id such as BEIR's query id) and their judgments (a relevant document, or a chunk of it, with a
-- grade >= 0; 0 means judged not relevant). A run searched every query of a set with one search
-- configuration (`config`, JSON) and stores its aggregate metrics and, per query, the metrics and
-- the top ranked keys, so two runs of a set can be compared query by query. Judgments go with
-- their document (or chunk: a reindexed document has new chunks). Everything is the set owner's
-- under row-level security: another user's set, run or result is not there for them.
-- depends: V2_21__rerank_preferences

CREATE TABLE evaluation_sets (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id bigint NOT NULL
        CONSTRAINT evaluation_sets_owner_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    collection_id bigint NOT NULL
        CONSTRAINT evaluation_sets_collection_id_fkey REFERENCES collections (id)
            ON DELETE CASCADE,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT evaluation_sets_name_check CHECK (char_length(name) BETWEEN 1 AND 200),
    CONSTRAINT evaluation_sets_description_check CHECK (char_length(description) <= 5000)
);
CREATE INDEX evaluation_sets_owner_id_idx ON evaluation_sets (owner_id, id);
CREATE INDEX evaluation_sets_collection_id_idx ON evaluation_sets (collection_id);

CREATE TABLE evaluation_queries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    set_id bigint NOT NULL
        CONSTRAINT evaluation_queries_set_id_fkey REFERENCES evaluation_sets (id)
            ON DELETE CASCADE,
    external_id text,
    text text NOT NULL,
    CONSTRAINT evaluation_queries_set_id_external_id_key UNIQUE (set_id, external_id),
    CONSTRAINT evaluation_queries_text_check CHECK (char_length(text) BETWEEN 1 AND 2000),
    CONSTRAINT evaluation_queries_external_id_check
        CHECK (char_length(external_id) BETWEEN 1 AND 200)
);
CREATE INDEX evaluation_queries_set_id_idx ON evaluation_queries (set_id, id);

CREATE TABLE evaluation_judgments (
    query_id bigint NOT NULL
        CONSTRAINT evaluation_judgments_query_id_fkey REFERENCES evaluation_queries (id)
            ON DELETE CASCADE,
    document_id bigint NOT NULL
        CONSTRAINT evaluation_judgments_document_id_fkey REFERENCES documents (id)
            ON DELETE CASCADE,
    -- NULL: the judgment is on the whole document
    chunk_id bigint
        CONSTRAINT evaluation_judgments_chunk_id_fkey REFERENCES document_chunks (id)
            ON DELETE CASCADE,
    grade integer NOT NULL,
    CONSTRAINT evaluation_judgments_grade_check CHECK (grade BETWEEN 0 AND 100)
);
CREATE UNIQUE INDEX evaluation_judgments_key_idx
    ON evaluation_judgments (query_id, document_id, coalesce(chunk_id, 0));
-- The FKs' ON DELETE CASCADE when a document or chunk goes.
CREATE INDEX evaluation_judgments_document_id_idx ON evaluation_judgments (document_id);
CREATE INDEX evaluation_judgments_chunk_id_idx ON evaluation_judgments (chunk_id)
    WHERE chunk_id IS NOT NULL;

CREATE TABLE evaluation_runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    set_id bigint NOT NULL
        CONSTRAINT evaluation_runs_set_id_fkey REFERENCES evaluation_sets (id) ON DELETE CASCADE,
    config jsonb NOT NULL,
    state text NOT NULL DEFAULT 'running',
    -- mean nDCG@10, recall@k, MRR, latency p50/p95, queries evaluated, coverage (NULL until done)
    metrics jsonb,
    error text,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CONSTRAINT evaluation_runs_state_check CHECK (state IN ('running', 'done', 'failed')),
    CONSTRAINT evaluation_runs_config_check CHECK (jsonb_typeof(config) = 'object'),
    CONSTRAINT evaluation_runs_error_check CHECK (char_length(error) <= 2000)
);
CREATE INDEX evaluation_runs_set_id_idx ON evaluation_runs (set_id, id);

CREATE TABLE evaluation_results (
    run_id bigint NOT NULL
        CONSTRAINT evaluation_results_run_id_fkey REFERENCES evaluation_runs (id)
            ON DELETE CASCADE,
    query_id bigint NOT NULL
        CONSTRAINT evaluation_results_query_id_fkey REFERENCES evaluation_queries (id)
            ON DELETE CASCADE,
    level text NOT NULL,
    ndcg_at_10 double precision NOT NULL,
    recall_at_k double precision NOT NULL,
    reciprocal_rank double precision NOT NULL,
    latency_ms double precision NOT NULL,
    -- the top ranked document (or chunk) ids, best first
    ranked bigint[] NOT NULL,
    CONSTRAINT evaluation_results_pkey PRIMARY KEY (run_id, query_id),
    CONSTRAINT evaluation_results_level_check CHECK (level IN ('document', 'chunk'))
);
CREATE INDEX evaluation_results_query_id_idx ON evaluation_results (query_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON
    evaluation_sets, evaluation_queries, evaluation_judgments, evaluation_runs, evaluation_results
TO postrag_app;

-- A set, its queries, judgments, runs and results are their owner's.
ALTER TABLE evaluation_sets ENABLE ROW LEVEL SECURITY;
CREATE POLICY evaluation_sets_owner ON evaluation_sets FOR ALL TO postrag_app
    USING (owner_id = (SELECT postrag_user_id()))
    WITH CHECK (owner_id = (SELECT postrag_user_id()));
ALTER TABLE evaluation_queries ENABLE ROW LEVEL SECURITY;
CREATE POLICY evaluation_queries_owner ON evaluation_queries FOR ALL TO postrag_app
    USING (set_id IN (SELECT id FROM evaluation_sets))
    WITH CHECK (set_id IN (SELECT id FROM evaluation_sets));
ALTER TABLE evaluation_judgments ENABLE ROW LEVEL SECURITY;
CREATE POLICY evaluation_judgments_owner ON evaluation_judgments FOR ALL TO postrag_app
    USING (query_id IN (SELECT id FROM evaluation_queries))
    WITH CHECK (query_id IN (SELECT id FROM evaluation_queries));
ALTER TABLE evaluation_runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY evaluation_runs_owner ON evaluation_runs FOR ALL TO postrag_app
    USING (set_id IN (SELECT id FROM evaluation_sets))
    WITH CHECK (set_id IN (SELECT id FROM evaluation_sets));
ALTER TABLE evaluation_results ENABLE ROW LEVEL SECURITY;
CREATE POLICY evaluation_results_owner ON evaluation_results FOR ALL TO postrag_app
    USING (run_id IN (SELECT id FROM evaluation_runs))
    WITH CHECK (run_id IN (SELECT id FROM evaluation_runs));
