-- Undoes V2_22: evaluation sets, their queries, judgments, runs and results are gone.
DROP TABLE evaluation_results;
DROP TABLE evaluation_runs;
DROP TABLE evaluation_judgments;
DROP TABLE evaluation_queries;
DROP TABLE evaluation_sets;
