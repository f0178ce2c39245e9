-- Undoes V2_23: ratings of answers are forgotten.
DROP TABLE answer_feedback;
