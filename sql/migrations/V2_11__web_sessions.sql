-- V2_11: the web page's sign-in with the OpenID provider (issue 18): pending logins and sessions.
--
-- web_logins holds a sign-in between the redirect to the provider and its return: the state
-- (only its hash), the nonce and PKCE verifier sent with it, and a hash of the browser's
-- binding cookie, so that a state only completes in the browser that started it. A row is
-- deleted when its callback arrives (single use) and is refused after it expires. It is nobody's
-- data yet: only the tables' owner reads it, and postrag_app gets no access at all.
--
-- web_sessions holds a signed-in browser: only a hash of the cookie's secret (as api_tokens
-- keep only a hash), its user, and its absolute expiry. The CSRF token is derived from the
-- secret, so it is stored nowhere. Sessions are looked up before anyone is known, as the
-- tables' owner (like API tokens); a user acting as themselves sees and ends only their own
-- (sign-out), under the row-level security of V2_5. Expired rows are deleted when new ones
-- are made.
-- depends: V2_10__collection_shares

CREATE TABLE web_logins (
    state_hash bytea PRIMARY KEY,
    browser_hash bytea NOT NULL,
    nonce text NOT NULL,
    code_verifier text NOT NULL,
    redirect_uri text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    CONSTRAINT web_logins_redirect_uri_check CHECK (char_length(redirect_uri) BETWEEN 1 AND 2000)
);
CREATE INDEX web_logins_expires_at_idx ON web_logins (expires_at);

CREATE TABLE web_sessions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    secret_hash bytea NOT NULL CONSTRAINT web_sessions_secret_hash_key UNIQUE,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX web_sessions_user_id_idx ON web_sessions (user_id);
CREATE INDEX web_sessions_expires_at_idx ON web_sessions (expires_at);

GRANT SELECT, DELETE ON web_sessions TO postrag_app;
ALTER TABLE web_sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY web_sessions_owner ON web_sessions FOR ALL TO postrag_app
    USING (user_id = (SELECT postrag_user_id())) WITH CHECK (user_id = (SELECT postrag_user_id()));
