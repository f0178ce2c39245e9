-- V2_23: thumbs up or down on answers (issue 22: evaluation built in).
--
-- A user rates an assistant's answer (+1 good, -1 bad) with an optional comment; rating it again
-- replaces the rating (one per user and message). Rated answers become candidate judgments
-- (GET /api/v1/judgments): the question searched and the passages cited, to review and add to an
-- evaluation set. The rating goes with its message (a deleted chat, or a truncated one, takes
-- its ratings along). Readable and writable only by the chat's owner, like the messages (V2_5),
-- and only as the user who rated.
-- depends: V2_22__evaluations

CREATE TABLE answer_feedback (
    message_id bigint      NOT NULL
               CONSTRAINT answer_feedback_message_id_fkey
               REFERENCES chat_messages (id) ON DELETE CASCADE,
    user_id    bigint      NOT NULL
               CONSTRAINT answer_feedback_user_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    rating     smallint    NOT NULL,
    comment    text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT answer_feedback_pkey PRIMARY KEY (message_id, user_id),
    CONSTRAINT answer_feedback_rating_check CHECK (rating IN (-1, 1)),
    CONSTRAINT answer_feedback_comment_check CHECK (char_length(comment) <= 2000)
);
-- A user's ratings, the last first (the judgments' listing) and the user FK's cascade.
CREATE INDEX answer_feedback_user_id_idx ON answer_feedback (user_id, updated_at DESC);

CREATE TRIGGER answer_feedback_set_updated_at BEFORE UPDATE ON answer_feedback
    FOR EACH ROW EXECUTE FUNCTION postrag_set_updated_at();

GRANT SELECT, INSERT, UPDATE, DELETE ON answer_feedback TO postrag_app;
ALTER TABLE answer_feedback ENABLE ROW LEVEL SECURITY;
CREATE POLICY answer_feedback_owner ON answer_feedback FOR ALL TO postrag_app
    USING (user_id = (SELECT postrag_user_id()) AND message_id IN (SELECT id FROM chat_messages))
    WITH CHECK (
        user_id = (SELECT postrag_user_id()) AND message_id IN (SELECT id FROM chat_messages)
    );
