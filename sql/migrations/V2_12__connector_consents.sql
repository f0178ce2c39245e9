-- V2_12: pending connector consents (issue 19: Atlassian's OAuth 2.0 three-legged flow).
--
-- A row is a consent under way, between GET /api/v1/connectors/atlassian/authorize and the
-- provider's redirect back: a hash of the nonce inside the signed `state` (the state itself is
-- stored nowhere), the user who started it, the PKCE verifier and the redirect URI the code
-- exchange must repeat. The callback deletes the row (single use) and refuses it once expired.
-- A row is its user's: postrag_app reads, writes and deletes only the acting user's rows, under
-- the row-level security conventions of V2_5 (the callback acts as the user the state's
-- signature names). A user's expired rows are deleted when they start another consent.
-- depends: V2_11__web_sessions

CREATE TABLE connector_consents (
    nonce_hash    bytea       CONSTRAINT connector_consents_pkey PRIMARY KEY,
    user_id       bigint      NOT NULL
                  CONSTRAINT connector_consents_user_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    provider      text        NOT NULL,
    browser_hash  bytea       NOT NULL,
    code_verifier text        NOT NULL,
    redirect_uri  text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    CONSTRAINT connector_consents_provider_check CHECK (provider ~ '^[a-z][a-z0-9_-]{0,39}$'),
    CONSTRAINT connector_consents_redirect_uri_check
        CHECK (char_length(redirect_uri) BETWEEN 1 AND 2000)
);
CREATE INDEX connector_consents_user_id_idx ON connector_consents (user_id);
CREATE INDEX connector_consents_expires_at_idx ON connector_consents (expires_at);

GRANT SELECT, INSERT, DELETE ON connector_consents TO postrag_app;
ALTER TABLE connector_consents ENABLE ROW LEVEL SECURITY;
CREATE POLICY connector_consents_owner ON connector_consents FOR ALL TO postrag_app
    USING (user_id = (SELECT postrag_user_id())) WITH CHECK (user_id = (SELECT postrag_user_id()));
