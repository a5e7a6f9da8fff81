-- Rendered by stackgen from services.postgres; change stack.yaml and re-render instead of editing.
-- nix/processes/postgres.sh runs this once, when it initializes an empty data folder.
CREATE DATABASE "tutor";
CREATE ROLE "tutor" LOGIN;
ALTER DATABASE "tutor" OWNER TO "tutor";
\connect "tutor"
CREATE EXTENSION IF NOT EXISTS "vector";
