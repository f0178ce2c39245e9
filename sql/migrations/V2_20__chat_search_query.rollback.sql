-- Undoes V2_20: answers forget the query their sources were searched with.
ALTER TABLE chat_messages DROP COLUMN search_query;
