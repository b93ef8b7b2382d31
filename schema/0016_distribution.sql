-- SPDX-License-Identifier: Apache-2.0
-- Ready for a distributed PostgreSQL (Citus) with agent_id as the
-- distribution key (README.md, "Past one primary: Citus").
--
-- vigil_distribution is the one list of how each table would be placed:
--   distributed  sharded by agent_id, colocated with events: every primary
--                key and unique index includes agent_id, and every foreign
--                key goes to a reference table or includes agent_id
--                (tests/integration/test_distribution_keys.py checks it
--                against the catalog)
--   reference    a copy on every node: small, joined with the per-agent
--                tables, or a foreign key's target
-- Tables not listed stay on the coordinator (operators' and collectors'
-- own bookkeeping: tokens, sessions, audit log, alert outbox, enrollment,
-- revocations, the advisory queue, schema_migrations). A new table with an
-- agent_id column must be listed (the test says so).
CREATE VIEW vigil_distribution (table_name, placement, distribution_column) AS
VALUES
    ('events',                'distributed', 'agent_id'),
    ('containers',            'distributed', 'agent_id'),
    ('findings',              'distributed', 'agent_id'),
    ('dead_letters',          'distributed', 'agent_id'),
    ('vuln_container_images', 'distributed', 'agent_id'),
    ('agents',                'reference',   NULL),
    ('event_kinds',           'reference',   NULL),
    ('images',                'reference',   NULL),
    ('image_packages',        'reference',   NULL),
    ('vuln_matches',          'reference',   NULL),
    ('advisories',            'reference',   NULL),
    ('advisory_affected',     'reference',   NULL),
    ('advisory_aliases',      'reference',   NULL);

-- findings and dead_letters were keyed by their identity alone. The
-- identity stays unique in practice (one sequence); the key now includes
-- agent_id. No ON CONFLICT names these keys: findings are upserted on
-- (agent_id, container_id, rule, key), dead letters only inserted.
ALTER TABLE findings DROP CONSTRAINT findings_pkey;
ALTER TABLE findings ADD PRIMARY KEY (agent_id, id);
-- the alert sender looks findings up by id alone
CREATE INDEX findings_id ON findings (id);

ALTER TABLE dead_letters DROP CONSTRAINT dead_letters_pkey;
ALTER TABLE dead_letters ADD PRIMARY KEY (agent_id, id);
