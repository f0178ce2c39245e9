-- Undoes V2_12: consents under way are forgotten (their callbacks then answer 400).
DROP TABLE connector_consents;
