-- SPDX-License-Identifier: Apache-2.0
-- Vulnerable images, the fleet side: the package inventory of each image
-- (ImageInventory events, kind 9), the matches of its packages against the
-- advisories of 0009_advisories.sql, and the "vulnerable image running"
-- findings.
--
-- Ingest. An ImageInventory event is stored in events like any event (its
-- details hold the image's facts and package count, not the packages) and
-- vigil_apply_images() stores the image and its packages in the batch's
-- transaction. An image is stored once: a later inventory of the same
-- image_id only adds the image name it was seen under. Storing a new image
-- notifies channel vigil_vuln (at commit); matched_at stays NULL until the
-- matcher has seen it.
--
-- Matching (collector/vuln/: match.c decides, advdb.c reads and writes,
-- matcher.c runs it in the collector). Candidate pairs come from SQL:
-- image_packages.source_name = advisory_affected.package on the image's
-- (distro, release), derived from its os-release ID and VERSION_ID the way
-- the OSV ecosystems name releases (vigil_image_release: debian "12",
-- ubuntu "22.04", alpine "3.19.1" -> "3.19"); the version test runs in C by
-- the ecosystem's rules. Matches are recomputed incrementally:
--   * new images (matched_at IS NULL) against every advisory;
--   * advisories an import added or changed (vuln_advisory_queue, filled
--     in the import's transaction) against every image already matched:
--     their matches are deleted and computed again, so a withdrawn or
--     changed advisory loses the matches it no longer has.
-- A pass holds the transaction-level advisory lock 'vigil vuln match', so
-- passes of several collectors and of the import command never interleave.
-- images.vuln_counts (matches by severity, 0 unknown .. 5 critical) and
-- vuln_max summarise an image's matches for the fleet summary, the page and
-- the findings.
--
-- Exposure: containers.image_digest names the image a container runs;
-- its started_at / stopped_at (and state) say when it ran.

INSERT INTO event_kinds VALUES (9, 'image_inventory') ON CONFLICT DO NOTHING;

-- A severity of the advisories' scale by name.
CREATE FUNCTION vigil_vuln_severity(s integer) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (ARRAY['unknown', 'negligible', 'low', 'medium', 'high', 'critical'])[s + 1]
$$;

-- The highest severity with a count in counts (0..5 by index 1..6).
CREATE FUNCTION vigil_vuln_max(counts integer[]) RETURNS smallint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(max(k - 1), 0)::smallint FROM unnest(counts) WITH ORDINALITY AS u(n, k)
    WHERE n > 0
$$;

CREATE TABLE images (
    image_id       text PRIMARY KEY,             -- the digest the agent names (ImageInventory.image_id)
    names          text[] NOT NULL DEFAULT '{}', -- image names it was seen under (at most 16)
    os_id          text NOT NULL DEFAULT '',
    os_version_id  text NOT NULL DEFAULT '',
    os_codename    text NOT NULL DEFAULT '',
    os_pretty      text NOT NULL DEFAULT '',
    distro         text NOT NULL DEFAULT '',     -- advisory_affected.distro / release it matches
    release        text NOT NULL DEFAULT '',
    format         text NOT NULL,                -- dpkg | apk | rpm | none
    status         text NOT NULL,                -- ok | partial | not read
    reason         text NOT NULL DEFAULT '',
    packages       integer NOT NULL,
    packages_cut   integer NOT NULL DEFAULT 0,
    read_ms        integer,
    agent_id       integer,                      -- who sent the stored inventory
    container_id   text,
    first_seen     timestamptz NOT NULL DEFAULT now(),
    matched_at     timestamptz,                  -- NULL: the matcher has not seen it yet
    vuln_counts    integer[] NOT NULL DEFAULT '{0,0,0,0,0,0}',
    vuln_max       smallint GENERATED ALWAYS AS (vigil_vuln_max(vuln_counts)) STORED
);
CREATE INDEX images_unmatched ON images (first_seen) WHERE matched_at IS NULL;
CREATE INDEX images_release ON images (distro, release);
CREATE INDEX images_vulnerable ON images (vuln_max) WHERE vuln_max > 0;

CREATE TABLE image_packages (
    image_id        text NOT NULL REFERENCES images (image_id) ON DELETE CASCADE,
    name            text NOT NULL,
    version         text NOT NULL,
    arch            text NOT NULL DEFAULT '',
    source_name     text NOT NULL,   -- what advisories name
    source_version  text NOT NULL
);
-- an image's packages (new images); a source package across images
-- (new advisories)
CREATE INDEX image_packages_image ON image_packages (image_id, source_name);
CREATE INDEX image_packages_source ON image_packages (source_name, image_id);

-- One row per (image, installed package, advisory) whose version test
-- says affected. version is the installed (binary) version; fixed is the
-- fixed version of the range that matched, NULL when there is no fix.
CREATE TABLE vuln_matches (
    image_id     text NOT NULL,
    package      text NOT NULL,
    source_name  text NOT NULL,
    version      text NOT NULL,
    advisory_id  text NOT NULL,
    fixed        text,
    severity     smallint NOT NULL,
    matched_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX vuln_matches_image ON vuln_matches (image_id, severity);
CREATE INDEX vuln_matches_advisory ON vuln_matches (advisory_id, image_id);

-- Advisories to match again: what an import added or changed.
CREATE TABLE vuln_advisory_queue (
    advisory_id  text PRIMARY KEY,
    queued_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX vuln_advisory_queue_order ON vuln_advisory_queue (queued_at, advisory_id);

-- "Which containers run image X": containers.image_digest is indexed
-- (0001); exposure now filters running ones.
CREATE INDEX containers_running_digest ON containers (image_digest) WHERE state = 'running';

-- The release an image matches advisories of, as the OSV ecosystems name
-- it (osv.c): Debian "Debian:12" -> 12 (VERSION_ID is the major), Ubuntu
-- "Ubuntu:22.04:LTS" -> 22.04, Alpine "Alpine:v3.19" -> 3.19 from
-- VERSION_ID 3.19.1. Other systems keep their VERSION_ID (no advisories).
CREATE FUNCTION vigil_image_release(os_id text, version_id text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE os_id
        WHEN 'alpine' THEN coalesce(substring(version_id FROM '^[0-9]+\.[0-9]+'), version_id)
        WHEN 'debian' THEN split_part(version_id, '.', 1)
        ELSE version_id END
$$;

-- Apply the images of a commit group: plan = [{"a", "image_id", "image",
-- "container_id", "os_id", "os_version_id", "os_codename", "os_pretty",
-- "format", "status", "reason", "packages_cut", "read_ms", "pk": [[name, version,
-- arch, source_name, source_version]...]}], checked by the collector (rows.c:
-- sizes, UTF-8). The first inventory of an image id in the group is kept;
-- a stored image is not rewritten, only a new name is added.
CREATE FUNCTION vigil_apply_images(plan jsonb) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    fresh integer;
BEGIN
    WITH src AS (
        SELECT DISTINCT ON (x->>'image_id') x
        FROM jsonb_array_elements(plan) WITH ORDINALITY AS t(x, ord)
        ORDER BY x->>'image_id', ord
    ), ins AS (
        INSERT INTO images (image_id, names, os_id, os_version_id, os_codename, os_pretty,
            distro, release, format, status, reason, packages, packages_cut, read_ms,
            agent_id, container_id)
        SELECT x->>'image_id',
               CASE WHEN coalesce(x->>'image', '') = '' THEN '{}' ELSE ARRAY[x->>'image'] END,
               x->>'os_id', x->>'os_version_id', x->>'os_codename', x->>'os_pretty',
               x->>'os_id', vigil_image_release(x->>'os_id', x->>'os_version_id'),
               x->>'format', x->>'status', x->>'reason', jsonb_array_length(x->'pk'),
               (x->>'packages_cut')::integer, (x->>'read_ms')::integer, (x->>'a')::integer,
               nullif(x->>'container_id', '')
        FROM src
        ON CONFLICT (image_id) DO NOTHING
        RETURNING image_id
    ), pk AS (
        INSERT INTO image_packages (image_id, name, version, arch, source_name, source_version)
        SELECT ins.image_id, p->>0, p->>1, p->>2, p->>3, p->>4
        FROM ins JOIN src ON src.x->>'image_id' = ins.image_id
        CROSS JOIN LATERAL jsonb_array_elements(src.x->'pk') AS p
    )
    SELECT count(*) INTO fresh FROM ins;

    UPDATE images i SET names = i.names || n.image
    FROM (SELECT DISTINCT x->>'image_id' AS id, x->>'image' AS image
          FROM jsonb_array_elements(plan) AS x) n
    WHERE i.image_id = n.id AND coalesce(n.image, '') <> '' AND NOT (n.image = ANY (i.names))
      AND cardinality(i.names) < 16;

    IF fresh > 0 THEN
        PERFORM pg_notify('vigil_vuln', 'images');
    END IF;
END $$;

-- "Vulnerable image running" findings are raised by the matcher, not at
-- ingest (the rule engine judges one event and cannot see matches): kind
-- 'vuln', rule 'vulnerable_image' of the catalog, one per container, key
-- ''. Evidence (0, 0): no one event shows it.
ALTER TABLE findings DROP CONSTRAINT findings_kind_check;
ALTER TABLE findings ADD CONSTRAINT findings_kind_check
    CHECK (kind IN ('posture', 'runtime', 'vuln'));
CREATE INDEX findings_vuln_open ON findings (agent_id, container_id)
    WHERE kind = 'vuln' AND state <> 'resolved';

-- Bring the findings of rule_id in line with what runs now: a running
-- container whose image has matches at or above min_sev has an open
-- finding (opened, reopened, or updated when its summary changes); the
-- others are resolved. Every open, reopen and resolve is also stored as an
-- event. Return the number of findings written.
CREATE FUNCTION vigil_vuln_findings(min_sev smallint, rule_id text) RETURNS integer
    LANGUAGE plpgsql AS $$
DECLARE
    n_up integer;
    n_res integer;
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS vuln_want (a integer, id text, s smallint, m text,
        d jsonb) ON COMMIT DROP;
    TRUNCATE vuln_want;
    -- per image first (the worst advisory ids), then its running containers
    INSERT INTO vuln_want
    WITH img AS MATERIALIZED (
        SELECT i.image_id, i.vuln_max, i.vuln_counts, t.ids FROM images i
        CROSS JOIN LATERAL (
            SELECT array_agg(advisory_id ORDER BY severity DESC, advisory_id) AS ids FROM (
                SELECT DISTINCT ON (advisory_id) advisory_id, severity FROM (
                    SELECT advisory_id, severity FROM vuln_matches vm
                    WHERE vm.image_id = i.image_id AND vm.severity >= min_sev
                    ORDER BY severity DESC, advisory_id LIMIT 20) y
                ORDER BY advisory_id) z
        ) t
        WHERE i.vuln_max >= min_sev
          AND EXISTS (SELECT 1 FROM containers c WHERE c.image_digest = i.image_id
                                                   AND c.state = 'running')
    )
    SELECT c.agent_id, c.id, i.vuln_max,
           format('image %s: %s vulnerable package matches at or above %s (worst %s): %s%s',
                  coalesce(c.image, i.image_id),
                  (SELECT sum(x) FROM unnest(i.vuln_counts[min_sev + 1:6]) x),
                  vigil_vuln_severity(min_sev), vigil_vuln_severity(i.vuln_max),
                  array_to_string(i.ids[1:5], ', '),
                  CASE WHEN cardinality(i.ids) > 5 THEN ', ...' ELSE '' END),
           jsonb_build_object('image_id', i.image_id, 'counts', to_jsonb(i.vuln_counts),
                              'advisories', to_jsonb(i.ids))
    FROM img i JOIN containers c ON c.image_digest = i.image_id AND c.state = 'running';

    WITH prev AS (
        SELECT f.id, f.state FROM findings f JOIN vuln_want w
            ON f.agent_id = w.a AND f.container_id = w.id AND f.rule = rule_id
            AND f.key = ''
    ), up AS (
        INSERT INTO findings AS f (agent_id, container_id, rule, key, kind, severity, state,
            summary, first_seen, last_seen, count, evidence_seq, evidence_idx, last_seq,
            last_idx, details)
        SELECT w.a, w.id, rule_id, '', 'vuln', w.s, 'open', w.m, now(),
               now(), 1, 0, 0, 0, 0, w.d
        FROM vuln_want w
        ON CONFLICT (agent_id, container_id, rule, key) DO UPDATE SET
            severity = EXCLUDED.severity, summary = EXCLUDED.summary,
            details = EXCLUDED.details, last_seen = now(), count = f.count + 1,
            state = CASE WHEN f.state = 'resolved' THEN 'reopened' ELSE f.state END,
            resolved_at = NULL, resolved_reason = NULL, updated_at = now()
        WHERE f.state = 'resolved' OR f.severity <> EXCLUDED.severity
           OR f.summary <> EXCLUDED.summary
        RETURNING f
    ), ev AS (
        INSERT INTO events
        SELECT e.* FROM up
        LEFT JOIN prev ON prev.id = (up.f).id
        CROSS JOIN LATERAL vigil_finding_event(up.f,
            CASE WHEN prev.id IS NULL THEN 'opened' ELSE 'reopened' END, now(), NULL, NULL) e
        WHERE prev.id IS NULL OR prev.state = 'resolved'
    )
    SELECT count(*) INTO n_up FROM up;

    WITH res AS (
        UPDATE findings f SET state = 'resolved', resolved_at = now(),
            resolved_reason = CASE WHEN c.state = 'running'
                                   THEN 'no advisory at or above the minimum severity'
                                   ELSE 'container not running' END,
            updated_at = now()
        FROM findings f2 LEFT JOIN containers c
            ON c.agent_id = f2.agent_id AND c.id = f2.container_id
        WHERE f.id = f2.id AND f.kind = 'vuln' AND f.rule = rule_id
          AND f.state <> 'resolved'
          AND NOT EXISTS (SELECT 1 FROM vuln_want w WHERE w.a = f.agent_id
                                                      AND w.id = f.container_id)
        RETURNING f
    ), ev AS (
        INSERT INTO events
        SELECT e.* FROM res
        CROSS JOIN LATERAL vigil_finding_event(res.f, 'resolved', now(), NULL, NULL) e
    )
    SELECT count(*) INTO n_res FROM res;
    RETURN n_up + n_res;
END $$;
