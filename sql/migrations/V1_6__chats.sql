-- V1_6: chats, each owned by one user.
-- depends: V1_5__vector_store

CREATE TABLE chats (
    id         bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT chats_pkey PRIMARY KEY,
    owner_id   bigint      NOT NULL
               CONSTRAINT chats_owner_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    title      text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chats_title_check CHECK (char_length(title) <= 300)
);

-- "My chats, newest first" (id breaks ties so pages are stable) and the owner FK's cascade.
CREATE INDEX chats_owner_id_updated_at_idx ON chats (owner_id, updated_at DESC, id DESC);

CREATE TRIGGER chats_set_updated_at BEFORE UPDATE ON chats
    FOR EACH ROW EXECUTE FUNCTION postrag_set_updated_at();
