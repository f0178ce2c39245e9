-- Undoes V2_24: preferences forget the wider context.
ALTER TABLE user_preferences DROP COLUMN context_window;
