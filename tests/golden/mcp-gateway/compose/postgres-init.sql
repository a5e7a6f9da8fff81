-- Rendered by stackgen from services.postgres; change stack.yaml and re-render instead of editing.
-- The postgres image runs this once, when it initializes an empty data volume.
CREATE ROLE "gateway" LOGIN;
ALTER DATABASE "gateway" OWNER TO "gateway";
\connect "gateway"
CREATE EXTENSION IF NOT EXISTS "timescaledb";
CREATE EXTENSION IF NOT EXISTS "vector";
