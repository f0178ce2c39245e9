-- Undoes V2_18: chats and preferences forget which MCP servers they use, answers their tool calls, and the
-- questions servers asked are gone.
DROP TABLE chat_questions;
ALTER TABLE chat_messages DROP COLUMN tool_calls;
ALTER TABLE user_preferences DROP COLUMN mcp_server_ids;
ALTER TABLE chats DROP COLUMN mcp_server_ids;
