-- V2_9: groups of users, from the OpenID provider's groups claim or defined by an admin (issue 18).
--
-- A group is known by its name, unique whoever made it: the provider's `/team-a` and an admin's
-- `team-a` are two groups, but a provider group an admin defined first is that same group. A
-- membership says who made it: `provider` memberships are replaced by the groups claim of every
-- token (app/services/groups.py: sync_from_claim), as the tables' owner before anyone is known,
-- while `admin` memberships are an admin's and no token touches them. A user may hold both for
-- one group, so leaving it in the provider keeps what the admin gave. Groups and memberships are
-- readable by every user (sharing with a group names it) and written only by admins, under the
-- row-level security of V2_5.
-- depends: V2_8__user_identities

CREATE TABLE groups (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL CONSTRAINT groups_name_key UNIQUE,
    source text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT groups_name_check CHECK (char_length(name) BETWEEN 1 AND 255),
    CONSTRAINT groups_source_check CHECK (source IN ('provider', 'admin'))
);

CREATE TABLE group_members (
    group_id bigint NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT group_members_pkey PRIMARY KEY (group_id, user_id, source),
    CONSTRAINT group_members_source_check CHECK (source IN ('provider', 'admin'))
);
-- A user's memberships, read at every token.
CREATE INDEX group_members_user_id_idx ON group_members (user_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON groups, group_members TO postrag_app;

ALTER TABLE groups ENABLE ROW LEVEL SECURITY;
CREATE POLICY groups_read ON groups FOR SELECT TO postrag_app
    USING ((SELECT postrag_user_id()) IS NOT NULL);
CREATE POLICY groups_insert ON groups FOR INSERT TO postrag_app
    WITH CHECK ((SELECT postrag_user_is_admin()));
CREATE POLICY groups_update ON groups FOR UPDATE TO postrag_app
    USING ((SELECT postrag_user_is_admin())) WITH CHECK ((SELECT postrag_user_is_admin()));
CREATE POLICY groups_delete ON groups FOR DELETE TO postrag_app
    USING ((SELECT postrag_user_is_admin()));

ALTER TABLE group_members ENABLE ROW LEVEL SECURITY;
CREATE POLICY group_members_read ON group_members FOR SELECT TO postrag_app
    USING ((SELECT postrag_user_id()) IS NOT NULL);
CREATE POLICY group_members_insert ON group_members FOR INSERT TO postrag_app
    WITH CHECK ((SELECT postrag_user_is_admin()));
CREATE POLICY group_members_update ON group_members FOR UPDATE TO postrag_app
    USING ((SELECT postrag_user_is_admin())) WITH CHECK ((SELECT postrag_user_is_admin()));
CREATE POLICY group_members_delete ON group_members FOR DELETE TO postrag_app
    USING ((SELECT postrag_user_is_admin()));
