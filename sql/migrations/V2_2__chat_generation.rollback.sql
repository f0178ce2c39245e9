-- Undoes V2_2: chat scopes and the generation state of messages.
DROP TRIGGER chat_messages_set_updated_at ON chat_messages;
DROP INDEX chat_messages_one_streaming_idx;
ALTER TABLE chat_messages
    DROP CONSTRAINT chat_messages_finish_reason_check,
    DROP CONSTRAINT chat_messages_status_check,
    DROP COLUMN updated_at,
    DROP COLUMN stop_requested,
    DROP COLUMN error,
    DROP COLUMN reasoning,
    DROP COLUMN finish_reason,
    DROP COLUMN status;
ALTER TABLE chats
    DROP CONSTRAINT chats_collection_ids_check,
    DROP COLUMN collection_ids;
