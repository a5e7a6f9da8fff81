-- Rendered by stackgen from services.postgres; change stack.yaml and re-render instead of editing.
-- The postgres image runs this once, when it initializes an empty data volume.
CREATE ROLE "tutor" LOGIN;
ALTER DATABASE "tutor" OWNER TO "tutor";
\connect "tutor"
CREATE EXTENSION IF NOT EXISTS "vector";
