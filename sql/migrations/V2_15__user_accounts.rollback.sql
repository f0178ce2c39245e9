-- Undoes V2_15: accounts are forgotten (a source's permissions then map by email and group).
DROP TABLE user_accounts;
