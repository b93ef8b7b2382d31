-- SPDX-License-Identifier: Apache-2.0
-- Vigil schema, version 2: API tokens, the audit log of API reads, and the
-- indexes the query API's filters use.

-- API tokens: only the SHA-256 of a token is stored (hex). A revoked token
-- keeps its row (the audit log names it); a name is unique among the
-- tokens that are not revoked.
CREATE TABLE api_tokens (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9._@-]{1,64}$'),
    hash        text NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$'),
    role        text NOT NULL CHECK (role IN ('viewer', 'admin')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;

-- Every API read: who (token:NAME or cert:CN), from where (socket peer),
-- when, and what (method, path, query string). Written in the same
-- statement as the read itself, so no answer leaves without its record.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts          timestamptz NOT NULL DEFAULT now(),
    principal   text NOT NULL,
    role        text NOT NULL,
    peer        text NOT NULL,
    method      text NOT NULL,
    path        text NOT NULL,
    query       text NOT NULL
);
CREATE INDEX audit_log_ts ON audit_log (ts);
CREATE INDEX audit_log_principal ON audit_log (principal, ts);

-- "The latest high-severity events": rare rows, so a small index.
CREATE INDEX events_high_ts ON events (ts) WHERE severity >= 4;


-- Container filters of the API.
CREATE INDEX containers_name ON containers (name);
CREATE INDEX containers_last_seen ON containers (last_seen);
CREATE INDEX containers_labels ON containers USING gin (labels jsonb_path_ops);
