-- V2_19: what the chat-first web app (issue 21) needs of the schema.
--
-- A chat may name its own chat model (`chats.chat_model_id`, checked by the app when set: a
-- registered chat model); its answers use it before the user's preferred one and the registry's
-- default. Removing the model from the registry sets it back to NULL, as for preferences (V1_4).
-- A document's progress while it is processed: `chunks_total` (NULL until it is chunked) and
-- `chunks_embedded` (raised after each embedded batch); both start again when the document is
-- queued again. Documents indexed before take their chunk count as both. The columns fall under
-- the tables' existing grants and row-level policies (V2_5, V2_10, V2_14).
-- depends: V2_18__chat_tools

ALTER TABLE chats
    ADD COLUMN chat_model_id bigint
        CONSTRAINT chats_chat_model_id_fkey REFERENCES llm_models (id) ON DELETE SET NULL;
-- The FK's ON DELETE SET NULL when a model is removed.
CREATE INDEX chats_chat_model_id_idx ON chats (chat_model_id) WHERE chat_model_id IS NOT NULL;

ALTER TABLE documents
    ADD COLUMN chunks_total integer,
    ADD COLUMN chunks_embedded integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT documents_chunks_total_check CHECK (chunks_total >= 0),
    ADD CONSTRAINT documents_chunks_embedded_check CHECK (chunks_embedded >= 0);

-- A backfill is no change of the documents: their updated_at stays.
ALTER TABLE documents DISABLE TRIGGER documents_set_updated_at;
UPDATE documents d SET (chunks_total, chunks_embedded) = (
    SELECT c.n, c.n FROM (
        SELECT count(*)::integer AS n FROM document_chunks k WHERE k.document_id = d.id
    ) c
) WHERE d.status = 'indexed';
ALTER TABLE documents ENABLE TRIGGER documents_set_updated_at;
