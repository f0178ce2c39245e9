-- Undoes V2_3: connector tokens (their encrypted values are lost).
DROP TABLE connector_tokens;
