-- Rollback of V1_4.
DROP TABLE user_preferences;
