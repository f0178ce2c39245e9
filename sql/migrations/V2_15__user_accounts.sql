-- V2_15: the accounts postrag users have at a source (issue 19), so that a source's permissions
-- naming accounts (Atlassian's account ids in Confluence restrictions and Jira grants) map to
-- postrag users.
--
-- An account is linked when its user connects Atlassian (the consent's token says whose account
-- it is: `linked_by = 'consent'`), or by an admin (`'admin'`), for users who never connect. An
-- account belongs to one postrag user, and a user has one account per provider: a later link of
-- the same account, or of another account for the same user, replaces the earlier one. Users
-- read their own links and admins everyone's; links are written as the tables' owner by the
-- consent and by admins' requests (app/services/user_accounts.py), and read as the owner by the
-- sync, which maps every account a source names.
-- depends: V2_14__source_access

CREATE TABLE user_accounts (
    provider   text        NOT NULL,
    account_id text        NOT NULL,
    user_id    bigint      NOT NULL
               CONSTRAINT user_accounts_user_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    linked_by  text        NOT NULL,
    linked_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_accounts_pkey PRIMARY KEY (provider, account_id),
    CONSTRAINT user_accounts_user_id_provider_key UNIQUE (user_id, provider),
    CONSTRAINT user_accounts_provider_check CHECK (provider ~ '^[a-z][a-z0-9_-]{0,39}$'),
    CONSTRAINT user_accounts_account_id_check CHECK (char_length(account_id) BETWEEN 1 AND 128),
    CONSTRAINT user_accounts_linked_by_check CHECK (linked_by IN ('consent', 'admin'))
);

GRANT SELECT ON user_accounts TO postrag_app;
ALTER TABLE user_accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY user_accounts_read ON user_accounts FOR SELECT TO postrag_app
    USING (user_id = (SELECT postrag_user_id()) OR (SELECT postrag_user_is_admin()));
