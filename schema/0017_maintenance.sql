-- SPDX-License-Identifier: Apache-2.0
-- Partition maintenance that runs without a collector: the retention
-- policy lives in the database, and vigil_maintain_partitions() applies
-- it. Every collector calls it (at start, then hourly) with its own
-- settings, which it records here; a scheduler calls it with none while no
-- collector runs: pg_cron (README.md, "Retention"), or a timer running
-- `vigil-collector migrate`.

-- The one row: what the last collector to maintain the partitions had set.
CREATE TABLE vigil_retention (
    singleton                  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    retention_days             integer NOT NULL CHECK (retention_days BETWEEN 1 AND 36500),
    partitions_ahead_days      integer NOT NULL CHECK (partitions_ahead_days BETWEEN 1 AND 365),
    dead_letter_retention_days integer NOT NULL
        CHECK (dead_letter_retention_days BETWEEN 1 AND 36500),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);
INSERT INTO vigil_retention (retention_days, partitions_ahead_days, dead_letter_retention_days)
VALUES (30, 3, 30);

-- Record the arguments that are not NULL as the policy, then create the
-- daily event partitions from retention_days back to partitions_ahead_days
-- ahead, drop those older than retention_days and expire dead letters.
-- Returns the range the partitions cover (Unix seconds), how many
-- partitions were dropped and how many dead letters expired.
CREATE FUNCTION vigil_maintain_partitions(keep_days integer DEFAULT NULL,
                                          ahead_days integer DEFAULT NULL,
                                          dead_letter_days integer DEFAULT NULL,
                                          OUT lo bigint, OUT hi bigint,
                                          OUT dropped integer, OUT expired bigint)
    LANGUAGE plpgsql AS $$
DECLARE
    p vigil_retention;
BEGIN
    IF keep_days IS NOT NULL OR ahead_days IS NOT NULL OR dead_letter_days IS NOT NULL THEN
        UPDATE vigil_retention t SET
            retention_days = coalesce(keep_days, t.retention_days),
            partitions_ahead_days = coalesce(ahead_days, t.partitions_ahead_days),
            dead_letter_retention_days = coalesce(dead_letter_days,
                                                  t.dead_letter_retention_days),
            updated_at = now()
        WHERE (t.retention_days, t.partitions_ahead_days, t.dead_letter_retention_days)
              IS DISTINCT FROM
              (coalesce(keep_days, t.retention_days),
               coalesce(ahead_days, t.partitions_ahead_days),
               coalesce(dead_letter_days, t.dead_letter_retention_days));
    END IF;
    SELECT * INTO STRICT p FROM vigil_retention;
    SELECT e.lo, e.hi INTO lo, hi
      FROM vigil_ensure_partitions(p.retention_days, p.partitions_ahead_days) e;
    dropped := vigil_drop_partitions(p.retention_days);
    expired := vigil_expire_dead_letters(p.dead_letter_retention_days);
END $$;
