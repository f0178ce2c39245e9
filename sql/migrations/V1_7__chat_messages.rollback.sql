-- Rollback of V1_7.
DROP TABLE chat_messages;
