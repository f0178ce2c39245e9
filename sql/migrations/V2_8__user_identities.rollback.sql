-- Undoes V2_8: users forget their provider identity and email (provider users stay, as local users).
ALTER TABLE users
    DROP CONSTRAINT users_email_check,
    DROP CONSTRAINT users_subject_check,
    DROP CONSTRAINT users_issuer_check,
    DROP CONSTRAINT users_identity_check,
    DROP CONSTRAINT users_identity_key,
    DROP COLUMN email,
    DROP COLUMN subject,
    DROP COLUMN issuer;
