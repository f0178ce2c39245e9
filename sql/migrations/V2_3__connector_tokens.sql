-- V2_3: third-party (OAuth) tokens a user connects, such as Jira/Atlassian. The access and refresh
-- tokens are stored only encrypted (AES-GCM by the app, with POSTRAG_SECRET_KEY); key_id names
-- the key that encrypted them, so `postrag keys rotate` can find and re-encrypt what an old key
-- wrote. Expiry and scopes stay in clear: they are shown to the user and decide when to refresh.
-- depends: V2_2__chat_generation

CREATE TABLE connector_tokens (
    id            bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT connector_tokens_pkey PRIMARY KEY,
    owner_id      bigint      NOT NULL
                  CONSTRAINT connector_tokens_owner_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    provider      text        NOT NULL,
    access_token  bytea       NOT NULL,
    refresh_token bytea,
    key_id        text        NOT NULL,
    scopes        text[]      NOT NULL DEFAULT '{}',
    expires_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT connector_tokens_owner_id_provider_key UNIQUE (owner_id, provider),
    CONSTRAINT connector_tokens_provider_check CHECK (provider ~ '^[a-z][a-z0-9_-]{0,39}$'),
    -- nonce (12 bytes) + ciphertext + tag (16 bytes): never a plain token
    CONSTRAINT connector_tokens_access_token_check CHECK (octet_length(access_token) > 28),
    CONSTRAINT connector_tokens_refresh_token_check CHECK (octet_length(refresh_token) > 28)
);

CREATE INDEX connector_tokens_key_id_idx ON connector_tokens (key_id);

CREATE TRIGGER connector_tokens_set_updated_at BEFORE UPDATE ON connector_tokens
    FOR EACH ROW EXECUTE FUNCTION postrag_set_updated_at();
