-- Undoes V2_17: the registered MCP servers, their encrypted headers and their discovered tools
-- and prompts are gone.
DROP TABLE mcp_server_prompts;
DROP TABLE mcp_server_tools;
DROP TABLE mcp_servers;
