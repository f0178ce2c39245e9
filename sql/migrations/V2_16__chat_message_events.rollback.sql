-- Undoes V2_16: answers' events are forgotten (the messages keep their final text).
DROP TABLE chat_message_events;
