-- V2_24: a user's wider-context preference (issue 22).
--
-- `context_window`: tokens of neighbouring text each search hit and chat source brings (0: none);
-- NULL follows the server: nothing for searches, POSTRAG_CHAT_CONTEXT_WINDOW for chats. A
-- request's own `context_window` wins. Bounded as the search parameter is (0 to 1000). The column
-- falls under the table's existing grants and row-level policy.
-- depends: V2_23__answer_feedback

ALTER TABLE user_preferences
    ADD COLUMN context_window integer
        CONSTRAINT user_preferences_context_window_check
            CHECK (context_window BETWEEN 0 AND 1000);
