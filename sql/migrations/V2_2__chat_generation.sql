-- V2_2: what chatting with documents needs on top of V1_6/V1_7.
-- A chat may be scoped to some collections (NULL: every collection its owner may read). An
-- assistant message is written when its generation starts (status 'streaming'), so a stop request
-- from any app process can reach it, a crash leaves its partial text behind, and at most one
-- answer per chat is generated at a time; it ends 'complete', or 'incomplete' when it was stopped,
-- the client went away or the model failed mid-answer. Reasoning (<think> blocks) is kept apart
-- from the content, so it is shown but never fed back to the model as history.
-- depends: V2_1__full_text_bm25

ALTER TABLE chats
    ADD COLUMN collection_ids bigint[],
    ADD CONSTRAINT chats_collection_ids_check
        CHECK (cardinality(collection_ids) BETWEEN 1 AND 100);

ALTER TABLE chat_messages
    ADD COLUMN status         text        NOT NULL DEFAULT 'complete',
    ADD COLUMN finish_reason  text,
    ADD COLUMN reasoning      text        NOT NULL DEFAULT '',
    ADD COLUMN error          text,
    ADD COLUMN stop_requested boolean     NOT NULL DEFAULT false,
    ADD COLUMN updated_at     timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT chat_messages_status_check
        CHECK (status IN ('streaming', 'complete', 'incomplete')),
    ADD CONSTRAINT chat_messages_finish_reason_check
        CHECK (finish_reason IN ('stop', 'length', 'stopped', 'disconnected', 'error'));

-- One answer in the making per chat; a second request gets a 409 instead of interleaving.
CREATE UNIQUE INDEX chat_messages_one_streaming_idx ON chat_messages (chat_id)
    WHERE status = 'streaming';

CREATE TRIGGER chat_messages_set_updated_at BEFORE UPDATE ON chat_messages
    FOR EACH ROW EXECUTE FUNCTION postrag_set_updated_at();
