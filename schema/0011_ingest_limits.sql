-- SPDX-License-Identifier: Apache-2.0
-- Dead letters within bounds: a quota per agent and a retention, enforced
-- where they are written (cheap: the (agent_id, received_at) index), and
-- a sweep for agents that stopped sending.

CREATE INDEX dead_letters_received ON dead_letters (received_at);

-- Keep the dead letters of one batch: items = [{"i": idx, "r": reason,
-- "p": payload as hex}]. The agent's dead letters older than keep_days go
-- first; then at most quota of the agent's are kept in all. Returns how
-- many of items were kept.
CREATE FUNCTION vigil_dead_letters(agent integer, batch_seq bigint, items jsonb,
                                   quota bigint, keep_days integer) RETURNS integer
    LANGUAGE plpgsql AS $$
DECLARE
    have bigint;
    kept integer;
BEGIN
    DELETE FROM dead_letters
     WHERE agent_id = agent AND received_at < now() - make_interval(days => keep_days);
    SELECT count(*) INTO have
      FROM (SELECT 1 FROM dead_letters WHERE agent_id = agent LIMIT quota) s;
    IF have >= quota THEN
        RETURN 0;
    END IF;
    INSERT INTO dead_letters (agent_id, seq, idx, reason, payload)
    SELECT agent, batch_seq, (x->>'i')::integer, x->>'r', decode(x->>'p', 'hex')
      FROM jsonb_array_elements(items) WITH ORDINALITY AS t(x, o)
     ORDER BY o
     LIMIT quota - have;
    GET DIAGNOSTICS kept = ROW_COUNT;
    RETURN kept;
END
$$;

-- Delete dead letters older than keep_days; returns how many.
CREATE FUNCTION vigil_expire_dead_letters(keep_days integer) RETURNS bigint
    LANGUAGE sql AS $$
    WITH d AS (DELETE FROM dead_letters
                WHERE received_at < now() - make_interval(days => keep_days) RETURNING 1)
    SELECT count(*) FROM d
$$;
