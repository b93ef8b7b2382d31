-- SPDX-License-Identifier: Apache-2.0
-- Enrollment (collector/enroll/): join tokens, the identities enrollment
-- assigned, and every certificate it signed.
--
-- A join token is "vgj_<id>_<secret>"; only the SHA-256 of the secret's 32
-- bytes is stored. uses_max NULL means unlimited. A token is refused once
-- revoked, expired or used up; its row stays (certificates name it).
CREATE TABLE enroll_tokens (
    id             text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{16}$'),
    secret_sha256  bytea NOT NULL CHECK (length(secret_sha256) = 32),
    uses_max       integer NULL CHECK (uses_max IS NULL OR uses_max > 0),
    uses           integer NOT NULL DEFAULT 0 CHECK (uses >= 0),
    expires_at     timestamptz NOT NULL,
    labels         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
    name_pattern   text NULL CHECK (length(name_pattern) BETWEEN 1 AND 255),
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz NULL
);

-- An identity enrollment assigned: the certificate CN, made from the host
-- name and unique. machine_id tells a re-enrollment of the same host
-- (refused without --force) from another host of the same name (which
-- gets "NAME-2", ...). Agents of hand-made certificates have no row here.
CREATE TABLE agent_identities (
    name           text PRIMARY KEY,
    machine_id     text NOT NULL DEFAULT '',
    labels         jsonb NOT NULL DEFAULT '{}',
    token_id       text NULL REFERENCES enroll_tokens (id),
    enrolled_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz NULL,
    revoke_reason  text NULL
);
CREATE INDEX agent_identities_machine ON agent_identities (machine_id) WHERE machine_id <> '';

-- Every certificate enrollment signed: serial as lowercase hex (what
-- revocations.serial holds), 'enroll' (token_id set) or 'renew'.
CREATE TABLE agent_certs (
    serial         text PRIMARY KEY CHECK (serial ~ '^[0-9a-f]+$'),
    agent_name     text NOT NULL REFERENCES agent_identities (name),
    kind           text NOT NULL CHECK (kind IN ('enroll', 'renew')),
    token_id       text NULL REFERENCES enroll_tokens (id),
    not_before     timestamptz NOT NULL,
    not_after      timestamptz NOT NULL,
    issued_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz NULL
);
-- An identity's certificates (revoked on --force and by `agent revoke`).
CREATE INDEX agent_certs_agent ON agent_certs (agent_name, issued_at);
CREATE INDEX agent_certs_token ON agent_certs (token_id) WHERE token_id IS NOT NULL;
