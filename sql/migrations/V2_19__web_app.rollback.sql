-- Undoes V2_19: chats forget their own model, documents their progress.
ALTER TABLE documents DROP COLUMN chunks_embedded, DROP COLUMN chunks_total;
ALTER TABLE chats DROP COLUMN chat_model_id;
