-- V2_16: the events of a chat answer, stored as they are produced (issue 20: answer streams that
-- survive a dropped connection).
--
-- An answer is generated in the app process that received it, whether or not its client still
-- listens; each event it sends (retrieval, reasoning, delta, done, error, ...) is a row here,
-- numbered by `seq` (the SSE `id:`), strictly increasing per message. A client that reconnects
-- to any app process reads the rows after the last id it got, then waits for the next ones (the
-- writer sends a NOTIFY naming the message with each batch). Deltas are batched into one row
-- every ~80 ms, so writes stay bounded whatever the model's speed. Rows are pruned some hours
-- after their message ended (POSTRAG_CHAT_EVENTS_KEEP_HOURS); the final text stays in
-- chat_messages. Readable and writable only by the chat's owner, like the messages (V2_5).
-- depends: V2_15__user_accounts

CREATE TABLE chat_message_events (
    message_id bigint      NOT NULL
               CONSTRAINT chat_message_events_message_id_fkey
               REFERENCES chat_messages (id) ON DELETE CASCADE,
    seq        integer     NOT NULL,
    kind       text        NOT NULL,
    data       jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chat_message_events_pkey PRIMARY KEY (message_id, seq),
    CONSTRAINT chat_message_events_seq_check CHECK (seq >= 1),
    CONSTRAINT chat_message_events_kind_check CHECK (kind ~ '^[a-z][a-z_]{0,39}$'),
    CONSTRAINT chat_message_events_data_check CHECK (jsonb_typeof(data) = 'object')
);
-- Pruning looks for old rows first.
CREATE INDEX chat_message_events_created_at_idx ON chat_message_events (created_at);

GRANT SELECT, INSERT ON chat_message_events TO postrag_app;
ALTER TABLE chat_message_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY chat_message_events_owner ON chat_message_events FOR ALL TO postrag_app
    USING (message_id IN (SELECT id FROM chat_messages))
    WITH CHECK (message_id IN (SELECT id FROM chat_messages));
