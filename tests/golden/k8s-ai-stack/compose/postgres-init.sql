-- Rendered by stackgen from services.postgres; change stack.yaml and re-render instead of editing.
-- The postgres image runs this once, when it initializes an empty data volume.
CREATE ROLE "aidb" LOGIN;
ALTER DATABASE "aidb" OWNER TO "aidb";
\connect "aidb"
CREATE EXTENSION IF NOT EXISTS "vector";
\set password `cat /run/secrets/postgres-password`
ALTER ROLE "aidb" WITH PASSWORD :'password';
