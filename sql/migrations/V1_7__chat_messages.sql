-- V1_7: the messages of a chat, with what it took to produce them and the sources given to the
-- model (citations).
-- depends: V1_6__chats

CREATE TABLE chat_messages (
    id                bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT chat_messages_pkey PRIMARY KEY,
    chat_id           bigint      NOT NULL
                      CONSTRAINT chat_messages_chat_id_fkey REFERENCES chats (id) ON DELETE CASCADE,
    role              text        NOT NULL,
    content           text        NOT NULL,
    -- The model's name as used, kept even if the model later leaves the registry.
    model             text,
    prompt_tokens     integer,
    completion_tokens integer,
    latency_ms        integer,
    citations         jsonb       NOT NULL DEFAULT '[]'::jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chat_messages_role_check CHECK (role IN ('system', 'user', 'assistant')),
    CONSTRAINT chat_messages_token_counts_check
        CHECK (prompt_tokens >= 0 AND completion_tokens >= 0),
    CONSTRAINT chat_messages_latency_ms_check CHECK (latency_ms >= 0),
    CONSTRAINT chat_messages_citations_check CHECK (jsonb_typeof(citations) = 'array')
);

-- "Messages of a chat in order" (ids grow with time) and the chat FK's cascade.
CREATE INDEX chat_messages_chat_id_id_idx ON chat_messages (chat_id, id);
