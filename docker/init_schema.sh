#!/usr/bin/env bash
# First boot only (docker-entrypoint-initdb.d): the pgvector extension and the application role.
# No tables here: postrag's migrations own the schema and run at app start as the app role.
#
# The app role gets least privilege: it can log in, connect to this one database and own one
# schema named after itself (first on its default search_path, so the migrations' tables land
# there). It is not a superuser and cannot create databases or roles.
set -euo pipefail

: "${POSTGRES_USER:?}" "${POSTGRES_DB:?}" "${POSTRAG_APP_USER:?}" "${POSTRAG_APP_PASSWORD:?}"
if [ "$POSTRAG_APP_USER" = postrag_app ]; then
    # postrag_app is the role without login the app acts as for a user (row-level security);
    # the login role owns the tables, and an owner is not held to the policies.
    echo "POSTRAG_APP_USER must not be postrag_app (that name is the row-level-security role)" >&2
    exit 1
fi

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v db="$POSTGRES_DB" -v app_user="$POSTRAG_APP_USER" -v app_password="$POSTRAG_APP_PASSWORD" \
    <<'SQL'
-- Extensions need a privileged role; the migrations' CREATE EXTENSION IF NOT EXISTS is then a no-op.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE ROLE :"app_user" LOGIN PASSWORD :'app_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;

REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"app_user";

-- The app's own schema; nobody else may create objects in public.
CREATE SCHEMA :"app_user" AUTHORIZATION :"app_user";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app_user";

-- Row-level security (migration V2_5): the app acts for a user as postrag_app, a role without
-- login that cannot bypass RLS. Roles are cluster-wide, so it may exist already.
SELECT 'CREATE ROLE postrag_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'postrag_app') \gexec
GRANT postrag_app TO :"app_user";
GRANT TEMPORARY ON DATABASE :"db" TO postrag_app;
SQL
