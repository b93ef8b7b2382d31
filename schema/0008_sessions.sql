-- SPDX-License-Identifier: Apache-2.0
-- Vigil schema, version 8: the status page's sessions.
--
-- Signing in with an API token starts a session; the cookie carries the
-- session id (vgs_ + 32 random bytes in hex), never the token. Only the
-- SHA-256 of the id is stored. A session ends at expires_at (signing in +
-- http_session_lifetime at the time), when unused for idle_ms
-- (http_session_idle at the time) after last_used, on sign-out (its row is
-- deleted), and with its token: revoking a token deletes its sessions, and
-- the lookup also refuses a session whose token is revoked or expired, so
-- no session outlives its token. Deleting a token's row deletes its
-- sessions too.
CREATE TABLE api_sessions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hash        text NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$'),
    token_id    integer NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    idle_ms     bigint NOT NULL CHECK (idle_ms > 0),
    last_used   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_sessions_token ON api_sessions (token_id);
CREATE INDEX api_sessions_expires ON api_sessions (expires_at);
