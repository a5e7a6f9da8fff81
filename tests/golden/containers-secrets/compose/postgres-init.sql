-- Rendered by stackgen from services.postgres; change stack.yaml and re-render instead of editing.
-- The postgres image runs this once, when it initializes an empty data volume.
CREATE DATABASE "analytics";
\connect "app"
CREATE EXTENSION IF NOT EXISTS "vector";
CREATE EXTENSION IF NOT EXISTS "timescaledb";
\connect "analytics"
CREATE EXTENSION IF NOT EXISTS "vector";
CREATE EXTENSION IF NOT EXISTS "timescaledb";
\connect "postgres"
CREATE EXTENSION IF NOT EXISTS "pg_cron";
