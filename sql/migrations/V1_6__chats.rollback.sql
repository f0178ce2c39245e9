-- Rollback of V1_6.
DROP TABLE chats;
