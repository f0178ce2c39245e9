-- V2_20: the standalone question an answer's sources were searched with (issue 22: follow-ups in
-- context). A follow-up such as "And what does the GPL say about that?" is searched as the chat
-- model rewrote it, or with the earlier questions' key terms carried over (the offline rule);
-- `chat_messages.search_query` keeps what was searched, on the assistant's message, so an answer
-- can be explained later. NULL on users' messages and on answers stored before. The column falls
-- under the table's existing grants and row-level policy (V2_5).
-- depends: V2_19__web_app

ALTER TABLE chat_messages
    ADD COLUMN search_query text,
    ADD CONSTRAINT chat_messages_search_query_check CHECK (char_length(search_query) <= 4000);
