-- Undoes V2_11: pending sign-ins and web sessions are gone (everyone signed in is signed out).
DROP TABLE web_sessions;
DROP TABLE web_logins;
