-- V2_18: MCP tools inside chats (issue 20). A chat names the registered MCP servers whose tools
-- its answers may call (`mcp_server_ids`, checked by the app when set: registered and enabled;
-- one removed later is skipped); a user's preference names those new chats get. An answer keeps the calls its model made and their results
-- (`tool_calls`, shown with the message). A server that asks the user a question while a tool
-- runs (MCP elicitation) leaves a row in chat_questions: the answering thread waits for the
-- user's reply (through the API, from any app process: a NOTIFY on postrag_chat_events wakes
-- it) until it expires; readable and writable only by the chat's owner, like the messages.
-- depends: V2_17__mcp_servers

ALTER TABLE chats
    ADD COLUMN mcp_server_ids bigint[] NOT NULL DEFAULT '{}',
    ADD CONSTRAINT chats_mcp_server_ids_check CHECK (cardinality(mcp_server_ids) <= 20);

ALTER TABLE user_preferences
    ADD COLUMN mcp_server_ids bigint[] NOT NULL DEFAULT '{}',
    ADD CONSTRAINT user_preferences_mcp_server_ids_check CHECK (cardinality(mcp_server_ids) <= 20);

ALTER TABLE chat_messages
    ADD COLUMN tool_calls jsonb NOT NULL DEFAULT '[]',
    ADD CONSTRAINT chat_messages_tool_calls_check CHECK (jsonb_typeof(tool_calls) = 'array');

CREATE TABLE chat_questions (
    id               bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT chat_questions_pkey PRIMARY KEY,
    chat_id          bigint      NOT NULL
                     CONSTRAINT chat_questions_chat_id_fkey REFERENCES chats (id) ON DELETE CASCADE,
    message_id       bigint      NOT NULL
                     CONSTRAINT chat_questions_message_id_fkey
                     REFERENCES chat_messages (id) ON DELETE CASCADE,
    server           text        NOT NULL,
    tool             text        NOT NULL,
    question         text        NOT NULL,
    -- the flat JSON Schema of the form the server asks for ({} when it asks to open `url`)
    requested_schema jsonb       NOT NULL DEFAULT '{}',
    url              text,
    state            text        NOT NULL DEFAULT 'pending',
    -- {"action": "accept" | "decline" | "cancel", "content": {...}}, once answered
    answer           jsonb,
    expires_at       timestamptz NOT NULL,
    answered_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chat_questions_state_check
        CHECK (state IN ('pending', 'answered', 'declined', 'expired')),
    CONSTRAINT chat_questions_answer_check
        CHECK ((state IN ('answered', 'declined')) = (answer IS NOT NULL)),
    CONSTRAINT chat_questions_question_check CHECK (char_length(question) <= 10000),
    CONSTRAINT chat_questions_requested_schema_check
        CHECK (jsonb_typeof(requested_schema) = 'object')
);
-- A chat's pending questions (GET /api/v1/chats/{id}) and the FKs' cascades.
CREATE INDEX chat_questions_chat_id_idx ON chat_questions (chat_id, id);
CREATE INDEX chat_questions_message_id_idx ON chat_questions (message_id);

GRANT SELECT, INSERT, UPDATE ON chat_questions TO postrag_app;
ALTER TABLE chat_questions ENABLE ROW LEVEL SECURITY;
CREATE POLICY chat_questions_owner ON chat_questions FOR ALL TO postrag_app
    USING (chat_id IN (SELECT id FROM chats))
    WITH CHECK (chat_id IN (SELECT id FROM chats));
