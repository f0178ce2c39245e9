-- V2_13: sources (issue 19): a Confluence space, a Jira query or a website kept in sync with a
-- collection, its sync runs (history, counts, the checkpoint a crashed run resumes from) and the
-- items it brought (each the document it became, with the version it was fetched at).
--
-- A source belongs to its owner, who must be able to write its collection; the sync runs as the
-- owner, so row-level security checks the writes as for an upload. Deleting a source deletes its
-- documents (app/services/sources.py) and, by cascade, its runs and items.
-- depends: V2_12__connector_consents

CREATE TABLE sources (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id bigint NOT NULL
        CONSTRAINT sources_owner_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    collection_id bigint NOT NULL
        CONSTRAINT sources_collection_id_fkey REFERENCES collections (id) ON DELETE CASCADE,
    kind text NOT NULL,
    connector text,
    name text NOT NULL,
    config jsonb NOT NULL,
    schedule_minutes integer,
    paused boolean NOT NULL DEFAULT false,
    next_run_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sources_kind_check CHECK (kind IN ('confluence', 'jira', 'web')),
    CONSTRAINT sources_connector_check CHECK (connector IN ('atlassian')),
    CONSTRAINT sources_name_check CHECK (char_length(name) BETWEEN 1 AND 200),
    CONSTRAINT sources_schedule_check CHECK (schedule_minutes BETWEEN 15 AND 525600),
    CONSTRAINT sources_owner_id_name_key UNIQUE (owner_id, name)
);
CREATE INDEX sources_collection_id_idx ON sources (collection_id);
-- The scheduler's question: which sources are due.
CREATE INDEX sources_next_run_at_idx ON sources (next_run_at) WHERE NOT paused;

CREATE TABLE source_runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id bigint NOT NULL
        CONSTRAINT source_runs_source_id_fkey REFERENCES sources (id) ON DELETE CASCADE,
    state text NOT NULL DEFAULT 'queued',
    trigger text NOT NULL,
    checkpoint text,
    added integer NOT NULL DEFAULT 0,
    updated integer NOT NULL DEFAULT 0,
    deleted integer NOT NULL DEFAULT 0,
    unchanged integer NOT NULL DEFAULT 0,
    failed integer NOT NULL DEFAULT 0,
    errors jsonb NOT NULL DEFAULT '[]',
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    CONSTRAINT source_runs_state_check
        CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    CONSTRAINT source_runs_trigger_check CHECK (trigger IN ('manual', 'schedule', 'created'))
);
CREATE INDEX source_runs_source_id_id_idx ON source_runs (source_id, id DESC);
-- One run at a time per source.
CREATE UNIQUE INDEX source_runs_active_idx ON source_runs (source_id)
    WHERE state IN ('queued', 'running');

CREATE TABLE source_items (
    source_id bigint NOT NULL
        CONSTRAINT source_items_source_id_fkey REFERENCES sources (id) ON DELETE CASCADE,
    key text NOT NULL,
    version text NOT NULL,
    document_id bigint
        CONSTRAINT source_items_document_id_fkey REFERENCES documents (id) ON DELETE SET NULL,
    seen_run_id bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT source_items_pkey PRIMARY KEY (source_id, key),
    CONSTRAINT source_items_key_check CHECK (char_length(key) BETWEEN 1 AND 2000)
);
CREATE INDEX source_items_document_id_idx ON source_items (document_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON sources, source_runs, source_items TO postrag_app;

-- A source, its runs and its items are their owner's.
ALTER TABLE sources ENABLE ROW LEVEL SECURITY;
CREATE POLICY sources_owner ON sources FOR ALL TO postrag_app
    USING (owner_id = (SELECT postrag_user_id()))
    WITH CHECK (owner_id = (SELECT postrag_user_id()));
ALTER TABLE source_runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY source_runs_owner ON source_runs FOR ALL TO postrag_app
    USING (source_id IN (SELECT id FROM sources)) WITH CHECK (source_id IN (SELECT id FROM sources));
ALTER TABLE source_items ENABLE ROW LEVEL SECURITY;
CREATE POLICY source_items_owner ON source_items FOR ALL TO postrag_app
    USING (source_id IN (SELECT id FROM sources)) WITH CHECK (source_id IN (SELECT id FROM sources));
