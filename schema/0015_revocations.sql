-- SPDX-License-Identifier: Apache-2.0
-- Revocations that every collector applies within seconds.
--
-- A row revokes an agent identity (scope 'agent', name: the certificate CN,
-- every certificate of it and any later handshake), one agent certificate
-- (scope 'agent', serial), or an operator client certificate on the HTTPS
-- port (scope 'operator', by CN or serial). Serials are lower-case hex; the
-- collectors compare them without leading zeros. Rows are only added:
-- `vigil-collector agent revoke` / `operator revoke` and a forced
-- re-enrollment write them.
--
-- Each collector keeps the whole set in memory (collector/enroll/
-- revocations.c): it LISTENs on vigil_revocations, which the statement
-- trigger below notifies once per INSERT statement (at commit), and reads
-- the table again every 5 s in case a notification was missed while its
-- connection was down. The set is small (one row per revoked identity or
-- certificate), so it is read whole.
CREATE TABLE revocations (
    id         bigserial PRIMARY KEY,
    scope      text NOT NULL CHECK (scope IN ('agent', 'operator')),
    name       text NULL,
    serial     text NULL,
    reason     text NOT NULL DEFAULT '',
    revoked_by text NOT NULL DEFAULT '',
    revoked_at timestamptz NOT NULL DEFAULT now(),
    CHECK (name IS NOT NULL OR serial IS NOT NULL)
);

CREATE INDEX revocations_name ON revocations (scope, name) WHERE name IS NOT NULL;
CREATE INDEX revocations_serial ON revocations (scope, serial) WHERE serial IS NOT NULL;

CREATE FUNCTION revocations_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('vigil_revocations', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER revocations_notify AFTER INSERT ON revocations
    FOR EACH STATEMENT EXECUTE FUNCTION revocations_notify();
