#!/usr/bin/env bash
# First start of the production stack's database: the two roles of config/production.json.
# OWNER_ROLE owns the database and its schema and runs the migrations; APP_ROLE, the web process's role, may
# only read and write the rows of the tables the owner creates: no superuser, no CREATE, no role creation.
set -euo pipefail

: "${APP_ROLE_PASSWORD:?the web role needs a password (POSTGRES_PASSWORD)}"
: "${OWNER_ROLE_PASSWORD:?the owner role needs a password (POSTGRES_MIGRATION_PASSWORD)}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v db="$POSTGRES_DB" -v owner="$OWNER_ROLE" -v owner_password="$OWNER_ROLE_PASSWORD" \
    -v app="$APP_ROLE" -v app_password="$APP_ROLE_PASSWORD" <<'SQL'
CREATE ROLE :"owner" LOGIN PASSWORD :'owner_password';
CREATE ROLE :"app" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
ALTER DATABASE :"db" OWNER TO :"owner";
ALTER SCHEMA public OWNER TO :"owner";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT CONNECT ON DATABASE :"db" TO :"app";
GRANT USAGE ON SCHEMA public TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO :"app";
SQL
echo "Roles: $OWNER_ROLE owns database $POSTGRES_DB; $APP_ROLE may read and write its rows."
