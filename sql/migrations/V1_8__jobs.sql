-- V1_8: a durable job queue in PostgreSQL for background work (document ingestion and the like).
-- Workers claim queued jobs with FOR UPDATE SKIP LOCKED and hold a lease they renew; a running
-- job whose lease expired belongs to a dead worker and may be claimed again.
-- depends: V1_7__chat_messages

CREATE TABLE jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT jobs_pkey PRIMARY KEY,
    kind             text        NOT NULL,
    payload          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    state            text        NOT NULL DEFAULT 'queued',
    -- Jobs with the same key never run side by side (one ingestion per document, say).
    dedupe_key       text,
    attempts         integer     NOT NULL DEFAULT 0,
    max_attempts     integer     NOT NULL DEFAULT 5,
    run_after        timestamptz NOT NULL DEFAULT now(),
    lease_owner      text,
    lease_expires_at timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    CONSTRAINT jobs_kind_check CHECK (char_length(kind) BETWEEN 1 AND 100),
    CONSTRAINT jobs_state_check
        CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    CONSTRAINT jobs_attempts_check CHECK (attempts >= 0 AND max_attempts >= 1),
    CONSTRAINT jobs_payload_check CHECK (jsonb_typeof(payload) = 'object'),
    -- A running job always has a lease; no other state has one.
    CONSTRAINT jobs_lease_check CHECK (
        (state = 'running') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL)
    )
);

-- Claiming: the oldest due queued job first.
CREATE INDEX jobs_claim_idx ON jobs (run_after, id) WHERE state = 'queued';
-- Finding running jobs whose lease expired.
CREATE INDEX jobs_lease_expires_at_idx ON jobs (lease_expires_at) WHERE state = 'running';
CREATE UNIQUE INDEX jobs_active_dedupe_key_idx ON jobs (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state IN ('queued', 'running');

CREATE TRIGGER jobs_set_updated_at BEFORE UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION postrag_set_updated_at();
