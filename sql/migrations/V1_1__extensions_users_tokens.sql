-- V1_1: the pgvector extension, the users of postrag and their API tokens.
-- Tokens keep only a SHA-256 of the secret (the secret is 256 random bits, so a slow hash adds
-- nothing) plus a short lookup prefix that is shown to users so a leaked token can be recognised.

CREATE EXTENSION IF NOT EXISTS vector;

-- Shared by every table with an updated_at column, so no service has to remember to set it.
CREATE FUNCTION postrag_set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TABLE users (
    id          bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT users_pkey PRIMARY KEY,
    name        text        NOT NULL,
    role        text        NOT NULL DEFAULT 'user',
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_name_key UNIQUE (name),
    CONSTRAINT users_name_check CHECK (char_length(name) BETWEEN 1 AND 100),
    CONSTRAINT users_role_check CHECK (role IN ('admin', 'user'))
);

CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT api_tokens_pkey PRIMARY KEY,
    user_id      bigint      NOT NULL
                 CONSTRAINT api_tokens_user_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    prefix       text        NOT NULL,
    secret_hash  bytea       NOT NULL,
    scopes       text[]      NOT NULL DEFAULT ARRAY['read', 'write'],
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    CONSTRAINT api_tokens_prefix_key UNIQUE (prefix),
    CONSTRAINT api_tokens_name_check CHECK (char_length(name) BETWEEN 1 AND 100),
    CONSTRAINT api_tokens_secret_hash_check CHECK (octet_length(secret_hash) = 32),
    CONSTRAINT api_tokens_scopes_check
        CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'write'])
);

-- "My tokens, newest first" and the FK's cascade on user delete.
CREATE INDEX api_tokens_user_id_created_at_idx ON api_tokens (user_id, created_at DESC);
