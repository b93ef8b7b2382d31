-- SPDX-License-Identifier: Apache-2.0
-- Findings: what the rule engine judged, one row per (rule, container,
-- key), written in the transaction of the batch that holds the evidence.

CREATE TABLE findings (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id        integer NOT NULL REFERENCES agents (id),
    container_id    text NOT NULL,
    rule            text NOT NULL,
    key             text NOT NULL DEFAULT '',  -- mount path, capability, tool...
    kind            text NOT NULL CHECK (kind IN ('posture', 'runtime')),
    severity        smallint NOT NULL,
    state           text NOT NULL CHECK (state IN ('open', 'resolved', 'reopened')),
    summary         text NOT NULL,
    first_seen      timestamptz NOT NULL,
    last_seen       timestamptz NOT NULL,
    -- runtime: the events that raised it; posture: the reports that showed
    -- it, at most one per 10 minutes
    count           bigint NOT NULL DEFAULT 1,
    evidence_seq    bigint NOT NULL,  -- the first evidence: event (agent_id, seq, idx)
    evidence_idx    integer NOT NULL,
    last_seq        bigint NOT NULL,  -- the latest evidence
    last_idx        integer NOT NULL,
    details         jsonb,
    resolved_at     timestamptz,
    resolved_reason text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (agent_id, container_id, rule, key)
);
CREATE INDEX findings_active ON findings (agent_id, container_id) WHERE state <> 'resolved';
CREATE INDEX findings_last_seen ON findings (last_seen DESC, id DESC);

-- The rules a container's latest report could not judge (an input no
-- source established): the findings list's "unknown" count.
ALTER TABLE containers ADD COLUMN rules_unknown text[];

-- Finding events are made by the collector, not sent by an agent: their
-- seq is negative (from this sequence) and idx 0, so (agent_id, seq, idx)
-- stays unique; details name the evidence.
CREATE SEQUENCE finding_event_seq;

-- The event of kind finding (6) for an open, reopen or resolve of f.
CREATE FUNCTION vigil_finding_event(f findings, action text, at timestamptz,
                                    ev_seq bigint, ev_idx integer)
    RETURNS SETOF events LANGUAGE sql AS $$
    SELECT at, now(), f.agent_id, -nextval('finding_event_seq'), 0, 6::smallint,
           f.severity, vigil_container_key(f.container_id), f.container_id,
           NULL::bigint, NULL::bigint, NULL::bigint, NULL::text, NULL::text[], NULL::text,
           jsonb_build_object('finding', f.id, 'rule', f.rule, 'key', f.key,
                              'kind', f.kind, 'action', action, 'summary', f.summary,
                              'reason', f.resolved_reason,
                              'evidence', jsonb_build_object('seq', ev_seq, 'idx', ev_idx))
$$;

-- Apply the findings plan of a commit group (rules_plan_build):
--   runtime: [{a, id, r, k, s, m, n, ts, seq, idx, d, lts, lseq, lidx}]
--   posture: [{a, id, ts, seq, idx, hits: [{r, k, s, m}], unk: [rule]}]
--   full:    [{a, ids}]     an agent's containers: findings of others resolved
-- (a stopped container is still there: its findings stay open until the
-- agent no longer reports it).
-- Each statement writes a finding at most once; every open, reopen and
-- resolve is also stored as an event.
CREATE FUNCTION vigil_apply_findings(plan jsonb) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF jsonb_array_length(plan->'runtime') > 0 THEN
        WITH r AS (
            SELECT * FROM jsonb_to_recordset(plan->'runtime') AS r(a integer, id text,
                r text, k text, s smallint, m text, n bigint, ts numeric, seq bigint,
                idx integer, d jsonb, lts numeric, lseq bigint, lidx integer)
        ), prev AS (
            SELECT f.id, f.state FROM findings f
            JOIN r ON f.agent_id = r.a AND f.container_id = r.id AND f.rule = r.r AND f.key = r.k
        ), up AS (
            INSERT INTO findings AS f (agent_id, container_id, rule, key, kind, severity,
                state, summary, first_seen, last_seen, count, evidence_seq, evidence_idx,
                last_seq, last_idx, details)
            SELECT r.a, r.id, r.r, r.k, 'runtime', r.s, 'open', r.m, to_timestamp(r.ts / 1e9),
                   to_timestamp(r.lts / 1e9), r.n, r.seq, r.idx, r.lseq, r.lidx, r.d
            FROM r
            ON CONFLICT (agent_id, container_id, rule, key) DO UPDATE SET
                count = f.count + EXCLUDED.count,
                last_seen = greatest(f.last_seen, EXCLUDED.last_seen),
                last_seq = EXCLUDED.last_seq, last_idx = EXCLUDED.last_idx,
                severity = EXCLUDED.severity,
                state = CASE WHEN f.state = 'resolved' THEN 'reopened' ELSE f.state END,
                summary = CASE WHEN f.state = 'resolved' THEN EXCLUDED.summary ELSE f.summary END,
                details = CASE WHEN f.state = 'resolved' THEN EXCLUDED.details ELSE f.details END,
                resolved_at = NULL, resolved_reason = NULL, updated_at = now()
            RETURNING f
        )
        INSERT INTO events
        SELECT e.* FROM up
        JOIN r ON (up.f).agent_id = r.a AND (up.f).container_id = r.id
              AND (up.f).rule = r.r AND (up.f).key = r.k
        LEFT JOIN prev ON prev.id = (up.f).id
        CROSS JOIN LATERAL vigil_finding_event(up.f,
            CASE WHEN prev.id IS NULL THEN 'opened' ELSE 'reopened' END,
            to_timestamp(r.ts / 1e9), r.seq, r.idx) e
        WHERE prev.id IS NULL OR prev.state = 'resolved';
    END IF;

    IF jsonb_array_length(plan->'posture') > 0 THEN
        WITH p AS (
            SELECT * FROM jsonb_to_recordset(plan->'posture') AS p(a integer, id text,
                ts numeric, seq bigint, idx integer, hits jsonb, unk text[], off text[])
        ), h AS (
            SELECT p.a, p.id, p.ts, p.seq, p.idx, x.r, x.k, x.s, x.m
            FROM p CROSS JOIN LATERAL jsonb_to_recordset(p.hits) AS x(r text, k text,
                s smallint, m text)
        ), prev AS (
            SELECT f.id, f.state FROM findings f
            JOIN p ON f.agent_id = p.a AND f.container_id = p.id
            WHERE f.kind = 'posture'
        ), up AS (
            INSERT INTO findings AS f (agent_id, container_id, rule, key, kind, severity,
                state, summary, first_seen, last_seen, count, evidence_seq, evidence_idx,
                last_seq, last_idx)
            SELECT h.a, h.id, h.r, h.k, 'posture', h.s, 'open', h.m, to_timestamp(h.ts / 1e9),
                   to_timestamp(h.ts / 1e9), 1, h.seq, h.idx, h.seq, h.idx
            FROM h
            ON CONFLICT (agent_id, container_id, rule, key) DO UPDATE SET
                count = f.count + 1,
                last_seen = greatest(f.last_seen, EXCLUDED.last_seen),
                last_seq = EXCLUDED.last_seq, last_idx = EXCLUDED.last_idx,
                severity = EXCLUDED.severity, summary = EXCLUDED.summary,
                state = CASE WHEN f.state = 'resolved' THEN 'reopened' ELSE f.state END,
                resolved_at = NULL, resolved_reason = NULL, updated_at = now()
            -- Periodic reports repeat what is known: write only a change,
            -- and count a repeat at most every 10 minutes.
            WHERE f.state = 'resolved' OR f.severity <> EXCLUDED.severity
               OR f.summary <> EXCLUDED.summary
               OR f.last_seen < EXCLUDED.last_seen - interval '10 minutes'
            RETURNING f
        ), fixed AS (
            UPDATE findings f SET state = 'resolved', resolved_at = to_timestamp(p.ts / 1e9),
                resolved_reason = CASE WHEN f.rule = ANY (coalesce(p.off, '{}'))
                                       THEN 'rule off or excepted' ELSE 'setting fixed' END,
                updated_at = now()
            FROM p
            WHERE f.agent_id = p.a AND f.container_id = p.id AND f.kind = 'posture'
              AND f.state <> 'resolved'
              -- unknown is not fixed: a rule that could not judge keeps its finding
              AND f.rule <> ALL (coalesce(p.unk, '{}'))
              AND NOT EXISTS (SELECT 1 FROM h WHERE h.a = f.agent_id AND h.id = f.container_id
                                                AND h.r = f.rule AND h.k = f.key)
            RETURNING f, p.ts, p.seq, p.idx
        ), unknown AS (
            UPDATE containers c SET rules_unknown = p.unk
            FROM p WHERE c.agent_id = p.a AND c.id = p.id
              AND c.rules_unknown IS DISTINCT FROM p.unk
        )
        INSERT INTO events
        SELECT e.* FROM up
        JOIN h ON (up.f).agent_id = h.a AND (up.f).container_id = h.id
              AND (up.f).rule = h.r AND (up.f).key = h.k
        LEFT JOIN prev ON prev.id = (up.f).id
        CROSS JOIN LATERAL vigil_finding_event(up.f,
            CASE WHEN prev.id IS NULL THEN 'opened' ELSE 'reopened' END,
            to_timestamp(h.ts / 1e9), h.seq, h.idx) e
        WHERE prev.id IS NULL OR prev.state = 'resolved'
        UNION ALL
        SELECT e.* FROM fixed
        CROSS JOIN LATERAL vigil_finding_event(fixed.f, 'resolved',
            to_timestamp(fixed.ts / 1e9), fixed.seq, fixed.idx) e;
    END IF;

    IF jsonb_array_length(plan->'full') > 0 THEN
        WITH fl AS (
            SELECT * FROM jsonb_to_recordset(plan->'full') AS fl(a integer, ids text[])
        ), res AS (
            UPDATE findings f SET state = 'resolved', resolved_at = now(),
                resolved_reason = 'container removed', updated_at = now()
            FROM fl
            WHERE f.agent_id = fl.a AND f.state <> 'resolved'
              AND f.container_id <> ALL (coalesce(fl.ids, '{}'))
            RETURNING f
        )
        INSERT INTO events
        SELECT e.* FROM res
        CROSS JOIN LATERAL vigil_finding_event(res.f, 'resolved', now(), NULL, NULL) e;
    END IF;
END $$;
