-- One-time database setup on RDS, run by psql as the master user (idempotent: safe to
-- run again). deploy/aws/migrate.sh runs it as a one-off task before the migrations:
--   psql -v ON_ERROR_STOP=1 -v app_role=planscape -v app_db=planscape \
--        -v app_password="$APP_DB_PASSWORD" -f deploy/aws/db-setup.sql
-- The application's role owns its database (and so the tables it creates); the master
-- keeps rds_superuser for the extension.
SELECT format('CREATE ROLE %I LOGIN', :'app_role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_role') \gexec
ALTER ROLE :"app_role" WITH LOGIN PASSWORD :'app_password';
-- On RDS the master is no superuser: CREATE DATABASE ... OWNER needs it to be a member
-- of the owning role.
GRANT :"app_role" TO CURRENT_USER;
SELECT format('CREATE DATABASE %I OWNER %I', :'app_db', :'app_role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'app_db') \gexec
-- Extensions belong to one database: create PostGIS in the application's, not in the
-- master's (needs rds_superuser, which the application's role has not).
\connect :"app_db"
CREATE EXTENSION IF NOT EXISTS postgis;
