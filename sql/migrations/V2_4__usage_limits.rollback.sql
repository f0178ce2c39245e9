-- Undoes V2_4: limits' counters and the usage log.
DROP TABLE api_usage;
DROP TABLE llm_token_counters;
DROP TABLE request_counters;
