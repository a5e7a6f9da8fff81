-- Rendered by stackgen from services.postgres; change stack.yaml and re-render instead of editing.
-- The postgres image runs this once, when it initializes an empty data volume.
CREATE DATABASE "analytics";
CREATE ROLE "app" LOGIN;
ALTER DATABASE "app" OWNER TO "app";
CREATE ROLE "analytics" LOGIN;
ALTER DATABASE "analytics" OWNER TO "analytics";
\connect "app"
CREATE EXTENSION IF NOT EXISTS "vector";
CREATE EXTENSION IF NOT EXISTS "timescaledb";
\connect "analytics"
CREATE EXTENSION IF NOT EXISTS "vector";
CREATE EXTENSION IF NOT EXISTS "timescaledb";
\connect "app"
CREATE EXTENSION IF NOT EXISTS "pg_cron";
\set password `cat /run/secrets/postgres-password`
ALTER ROLE "app" WITH PASSWORD :'password';
ALTER ROLE "analytics" WITH PASSWORD :'password';
