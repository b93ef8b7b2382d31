-- SPDX-License-Identifier: Apache-2.0
-- Vigil schema, version 12: the command line as one text, for the
-- trigram indexes that serve argv= (collector/ingest/argvindex.c).
--
-- argv= is a substring of array_to_string(argv, ' '). array_to_string is
-- only STABLE (it calls each element type's output function), so it cannot
-- be indexed; this wrapper is IMMUTABLE, which holds for text[]. The
-- collector builds, in the background, a pg_trgm GIN index on
-- vigil_argv_text(argv) in each daily events partition once its day has
-- ended (CREATE INDEX CONCURRENTLY, one partition at a time); the current
-- day's partition, which takes the inserts, has none, so ingest pays
-- nothing for it. The API's argv= filter names the same expression, so the
-- planner uses the index wherever it exists.
--
-- PL/pgSQL, not SQL: an IMMUTABLE SQL function whose body is only STABLE
-- is never inlined, and a SQL function called once per row costs about
-- twice as much as this one (index builds evaluate it on every event).

CREATE FUNCTION vigil_argv_text(argv text[]) RETURNS text
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ BEGIN RETURN array_to_string(argv, ' '); END $$;
