-- V2_17: MCP servers whose tools and prompts chats may use (issue 20), and the tools and prompts
-- each one was last found to offer.
--
-- A server is reached over streamable HTTP at `url`, authenticated as `auth` says: with nothing,
-- with a static header (its value stored only encrypted, AES-GCM by the app under
-- POSTRAG_SECRET_KEY, `key_id` naming the key, as connector tokens are in V2_3), with the calling
-- user's Atlassian connector token, or with the user's identity exchanged at the OpenID provider
-- (RFC 8693) for a token meant for `exchange_audience`. Admins write servers; every user reads
-- them, except the header's value: postrag_app is granted every column but that one, so no
-- request can read it back, and the app decrypts it as the tables' owner when it calls the
-- server. The tools and prompts are replaced as a whole by each discovery (a refresh), under the
-- same rules.
-- depends: V2_16__chat_message_events

CREATE TABLE mcp_servers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL CONSTRAINT mcp_servers_name_key UNIQUE,
    url text NOT NULL,
    auth text NOT NULL DEFAULT 'none',
    header_name text,
    header_value bytea,
    key_id text,
    exchange_audience text,
    exchange_scope text,
    enabled boolean NOT NULL DEFAULT true,
    discovered_at timestamptz,
    discovery_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- A name prefixes its tools' names for the model (`<server>__<tool>`) and its slash commands.
    CONSTRAINT mcp_servers_name_check CHECK (name ~ '^[a-z][a-z0-9_-]{0,31}$'),
    CONSTRAINT mcp_servers_url_check CHECK (url ~ '^https?://' AND char_length(url) <= 2000),
    CONSTRAINT mcp_servers_auth_check
        CHECK (auth IN ('none', 'static_header', 'atlassian', 'token_exchange')),
    -- A static header has a name, an encrypted value and its key; no other kind has any.
    CONSTRAINT mcp_servers_header_check CHECK (
        (auth = 'static_header') = (header_name IS NOT NULL)
        AND (header_name IS NULL) = (header_value IS NULL)
        AND (header_value IS NULL) = (key_id IS NULL)
    ),
    -- nonce (12 bytes) + ciphertext + tag (16 bytes): never a plain value
    CONSTRAINT mcp_servers_header_value_check CHECK (octet_length(header_value) > 28),
    CONSTRAINT mcp_servers_header_name_check CHECK (header_name ~ '^[A-Za-z0-9-]{1,100}$'),
    CONSTRAINT mcp_servers_exchange_check CHECK (
        (auth = 'token_exchange') = (exchange_audience IS NOT NULL)
        AND (auth = 'token_exchange' OR exchange_scope IS NULL)
    ),
    CONSTRAINT mcp_servers_exchange_audience_check
        CHECK (char_length(exchange_audience) BETWEEN 1 AND 500),
    CONSTRAINT mcp_servers_exchange_scope_check
        CHECK (char_length(exchange_scope) BETWEEN 1 AND 1000),
    CONSTRAINT mcp_servers_discovery_error_check CHECK (char_length(discovery_error) <= 2000)
);
CREATE INDEX mcp_servers_key_id_idx ON mcp_servers (key_id) WHERE key_id IS NOT NULL;
CREATE TRIGGER mcp_servers_set_updated_at BEFORE UPDATE ON mcp_servers
    FOR EACH ROW EXECUTE FUNCTION postrag_set_updated_at();

CREATE TABLE mcp_server_tools (
    server_id bigint NOT NULL
        CONSTRAINT mcp_server_tools_server_id_fkey REFERENCES mcp_servers (id) ON DELETE CASCADE,
    name text NOT NULL,
    title text,
    description text,
    input_schema jsonb NOT NULL,
    discovered_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mcp_server_tools_pkey PRIMARY KEY (server_id, name),
    CONSTRAINT mcp_server_tools_name_check CHECK (char_length(name) BETWEEN 1 AND 128),
    CONSTRAINT mcp_server_tools_input_schema_check CHECK (jsonb_typeof(input_schema) = 'object')
);

CREATE TABLE mcp_server_prompts (
    server_id bigint NOT NULL
        CONSTRAINT mcp_server_prompts_server_id_fkey REFERENCES mcp_servers (id) ON DELETE CASCADE,
    name text NOT NULL,
    title text,
    description text,
    -- [{name, description, required}], the arguments a slash command passes
    arguments jsonb NOT NULL DEFAULT '[]',
    discovered_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mcp_server_prompts_pkey PRIMARY KEY (server_id, name),
    CONSTRAINT mcp_server_prompts_name_check CHECK (char_length(name) BETWEEN 1 AND 128),
    CONSTRAINT mcp_server_prompts_arguments_check CHECK (jsonb_typeof(arguments) = 'array')
);

-- Every column but the header's value: no request reads a secret back.
GRANT SELECT (
    id, name, url, auth, header_name, key_id, exchange_audience, exchange_scope, enabled,
    discovered_at, discovery_error, created_at, updated_at
) ON mcp_servers TO postrag_app;
GRANT INSERT, UPDATE, DELETE ON mcp_servers TO postrag_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON mcp_server_tools, mcp_server_prompts TO postrag_app;

ALTER TABLE mcp_servers ENABLE ROW LEVEL SECURITY;
CREATE POLICY mcp_servers_read ON mcp_servers FOR SELECT TO postrag_app
    USING ((SELECT postrag_user_id()) IS NOT NULL);
CREATE POLICY mcp_servers_insert ON mcp_servers FOR INSERT TO postrag_app
    WITH CHECK ((SELECT postrag_user_is_admin()));
CREATE POLICY mcp_servers_update ON mcp_servers FOR UPDATE TO postrag_app
    USING ((SELECT postrag_user_is_admin())) WITH CHECK ((SELECT postrag_user_is_admin()));
CREATE POLICY mcp_servers_delete ON mcp_servers FOR DELETE TO postrag_app
    USING ((SELECT postrag_user_is_admin()));

ALTER TABLE mcp_server_tools ENABLE ROW LEVEL SECURITY;
CREATE POLICY mcp_server_tools_read ON mcp_server_tools FOR SELECT TO postrag_app
    USING ((SELECT postrag_user_id()) IS NOT NULL);
CREATE POLICY mcp_server_tools_insert ON mcp_server_tools FOR INSERT TO postrag_app
    WITH CHECK ((SELECT postrag_user_is_admin()));
CREATE POLICY mcp_server_tools_delete ON mcp_server_tools FOR DELETE TO postrag_app
    USING ((SELECT postrag_user_is_admin()));

ALTER TABLE mcp_server_prompts ENABLE ROW LEVEL SECURITY;
CREATE POLICY mcp_server_prompts_read ON mcp_server_prompts FOR SELECT TO postrag_app
    USING ((SELECT postrag_user_id()) IS NOT NULL);
CREATE POLICY mcp_server_prompts_insert ON mcp_server_prompts FOR INSERT TO postrag_app
    WITH CHECK ((SELECT postrag_user_is_admin()));
CREATE POLICY mcp_server_prompts_delete ON mcp_server_prompts FOR DELETE TO postrag_app
    USING ((SELECT postrag_user_is_admin()));
