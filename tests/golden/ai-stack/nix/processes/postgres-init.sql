-- Rendered by stackgen from services.postgres; change stack.yaml and re-render instead of editing.
-- nix/processes/postgres.sh runs this once, when it initializes an empty data folder.
CREATE DATABASE "aidb";
CREATE ROLE "aidb" LOGIN;
ALTER DATABASE "aidb" OWNER TO "aidb";
\connect "aidb"
CREATE EXTENSION IF NOT EXISTS "vector";
