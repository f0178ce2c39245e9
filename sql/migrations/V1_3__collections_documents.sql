-- V1_3: collections of training documents, the documents themselves (original bytes included, so
-- they can be re-processed without the client) and an append-only history of their status.
-- depends: V1_2__llm_models

CREATE TABLE collections (
    id          bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT collections_pkey PRIMARY KEY,
    owner_id    bigint      NOT NULL
                CONSTRAINT collections_owner_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    -- The text-search configuration used for this collection's full-text index and queries.
    language    regconfig   NOT NULL DEFAULT 'english',
    is_shared   boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT collections_owner_id_name_key UNIQUE (owner_id, name),
    CONSTRAINT collections_name_check CHECK (char_length(name) BETWEEN 1 AND 200)
);

-- "Collections anyone may read" (the owner's own are found through the unique index above).
CREATE INDEX collections_shared_idx ON collections (id) WHERE is_shared;

CREATE TRIGGER collections_set_updated_at BEFORE UPDATE ON collections
    FOR EACH ROW EXECUTE FUNCTION postrag_set_updated_at();

CREATE TABLE documents (
    id            bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT documents_pkey PRIMARY KEY,
    collection_id bigint      NOT NULL
                  CONSTRAINT documents_collection_id_fkey REFERENCES collections (id) ON DELETE CASCADE,
    owner_id      bigint      NOT NULL
                  CONSTRAINT documents_owner_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    filename      text        NOT NULL,
    content_type  text        NOT NULL,
    sha256        bytea       NOT NULL,
    size_bytes    bigint      NOT NULL,
    content       bytea       NOT NULL,
    metadata      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status        text        NOT NULL DEFAULT 'queued',
    error         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- The same bytes uploaded twice to one collection are one document.
    CONSTRAINT documents_collection_id_sha256_key UNIQUE (collection_id, sha256),
    CONSTRAINT documents_sha256_check CHECK (octet_length(sha256) = 32),
    CONSTRAINT documents_size_bytes_check CHECK (size_bytes = octet_length(content)),
    CONSTRAINT documents_filename_check CHECK (char_length(filename) BETWEEN 1 AND 500),
    CONSTRAINT documents_metadata_check CHECK (jsonb_typeof(metadata) = 'object'),
    CONSTRAINT documents_status_check
        CHECK (status IN ('queued', 'extracting', 'chunking', 'embedding', 'indexed', 'failed'))
);

-- "My documents, newest first" and the owner FK's cascade.
CREATE INDEX documents_owner_id_created_at_idx ON documents (owner_id, created_at DESC);
-- Listing a collection's documents, filtered by status.
CREATE INDEX documents_collection_id_status_idx ON documents (collection_id, status);

CREATE TRIGGER documents_set_updated_at BEFORE UPDATE ON documents
    FOR EACH ROW EXECUTE FUNCTION postrag_set_updated_at();

CREATE TABLE document_status_history (
    id          bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT document_status_history_pkey PRIMARY KEY,
    document_id bigint      NOT NULL
                CONSTRAINT document_status_history_document_id_fkey
                REFERENCES documents (id) ON DELETE CASCADE,
    status      text        NOT NULL,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT document_status_history_status_check
        CHECK (status IN ('queued', 'extracting', 'chunking', 'embedding', 'indexed', 'failed'))
);

CREATE INDEX document_status_history_document_id_idx
    ON document_status_history (document_id, created_at, id);

-- Append-only: history rows are never changed (they still go with their document on delete).
CREATE FUNCTION postrag_reject_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER document_status_history_append_only BEFORE UPDATE ON document_status_history
    FOR EACH ROW EXECUTE FUNCTION postrag_reject_update();
