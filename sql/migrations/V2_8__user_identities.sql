-- V2_8: users from an OpenID Connect provider (issue 18).
--
-- A user the provider vouches for is known by (issuer, subject): the token's `iss` and `sub`,
-- which the provider never gives to anyone else, unlike a name or an email. Both are NULL for
-- users an admin creates (local users), and set together for provider users; a provider user is
-- created at their first request (app/services/users.py: from_identity) and gets name, email and,
-- when configured, role from every later token. Names stay unique across both kinds: a provider
-- name that is taken gets a suffix from the identity, so that no one takes over a local account
-- by calling themselves alike. Provisioning runs before anyone is known, as the tables' owner,
-- so the users policies of V2_5 (users see themselves, admins everyone) stay as they are.
-- depends: V2_7__job_owners_and_cancellation

ALTER TABLE users
    ADD COLUMN issuer text,
    ADD COLUMN subject text,
    ADD COLUMN email text,
    ADD CONSTRAINT users_identity_key UNIQUE (issuer, subject),
    ADD CONSTRAINT users_identity_check CHECK ((issuer IS NULL) = (subject IS NULL)),
    ADD CONSTRAINT users_issuer_check CHECK (char_length(issuer) BETWEEN 1 AND 2000),
    ADD CONSTRAINT users_subject_check CHECK (char_length(subject) BETWEEN 1 AND 255),
    ADD CONSTRAINT users_email_check CHECK (char_length(email) BETWEEN 1 AND 320);
