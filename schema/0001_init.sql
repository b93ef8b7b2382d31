-- SPDX-License-Identifier: Apache-2.0
-- Vigil schema, version 1: agents, containers, events (partitioned by
-- day), dead letters. Applied by the collector under an advisory lock.

CREATE TABLE agents (
    id               integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             text NOT NULL UNIQUE,  -- identity from the client certificate
    committed_seq    bigint NOT NULL DEFAULT 0,
    hostname         text,
    agent_version    text,
    boot_id          text,
    kernel           text,
    os               text,
    protocol_version integer,
    clock_skew_ms    bigint,
    first_seen       timestamptz NOT NULL DEFAULT now(),
    last_seen        timestamptz NOT NULL DEFAULT now(),
    last_hello       timestamptz,
    -- the latest AgentStatus (details as in events) and, summed over all
    -- of them, what the agent had to drop (spool full) and when
    status           jsonb,
    status_at        timestamptz,
    lost_events      bigint NOT NULL DEFAULT 0,
    lost_batches     bigint NOT NULL DEFAULT 0,
    lost_first       timestamptz,
    lost_last        timestamptz
);

-- Current state of every container an agent reported.
CREATE TABLE containers (
    agent_id         integer NOT NULL REFERENCES agents (id),
    id               text NOT NULL,
    name             text,
    runtime          text,
    image            text,
    image_digest     text,
    labels           jsonb,
    command          text[],
    uid              bigint,
    gid              bigint,
    privileged       boolean,
    cap_effective    text[],
    cap_bounding     text[],
    host_pid         boolean,
    host_net         boolean,
    host_ipc         boolean,
    host_uts         boolean,
    mounts           jsonb,
    read_only_rootfs boolean,
    seccomp_profile  text,
    apparmor_profile text,
    restart_policy   text,
    init_pid         bigint,
    created_at       timestamptz,
    started_at       timestamptz,
    stopped_at       timestamptz,
    exit_code        integer,
    state            text,
    first_seen       timestamptz NOT NULL DEFAULT now(),
    last_seen        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, id)
);
CREATE INDEX containers_image ON containers (image);
CREATE INDEX containers_image_digest ON containers (image_digest);

CREATE TABLE event_kinds (
    kind smallint PRIMARY KEY,
    name text NOT NULL
);
INSERT INTO event_kinds VALUES
    (1, 'inventory'), (2, 'container_started'), (3, 'container_stopped'),
    (4, 'process_exec'), (5, 'agent_status'), (6, 'finding'),
    (7, 'container_changed');

-- A 64-bit key for a container id: the first 8 bytes of its MD5, as the
-- collector computes it. Indexing this instead of the 64-character id keeps
-- the events index small; queries match both key and id.
CREATE FUNCTION vigil_container_key(id text) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT ('x' || left(md5(id), 16))::bit(64)::bigint $$;

-- Events, one row each, written by binary COPY. (agent_id, seq, idx) is
-- unique by construction (exactly-once batches); it is not indexed.
CREATE TABLE events (
    ts           timestamptz NOT NULL,  -- agent clock (clamped to the stored range)
    recv_ts      timestamptz NOT NULL,  -- collector clock
    agent_id     integer NOT NULL,
    seq          bigint NOT NULL,       -- batch sequence number
    idx          integer NOT NULL,      -- position in the batch
    kind         smallint NOT NULL,
    severity     smallint NOT NULL,
    container_key bigint,
    container_id text,
    pid          bigint,
    ppid         bigint,
    uid          bigint,
    exe          text,
    argv         text[],
    cwd          text,
    details      jsonb
) PARTITION BY RANGE (ts);
CREATE INDEX events_agent_ts ON events (agent_id, ts);
CREATE INDEX events_container_ts ON events (container_key, ts) WHERE container_key IS NOT NULL;
-- Everything but process execs is rare: a small index serves "kind X since T".
CREATE INDEX events_kind_ts ON events (kind, ts) WHERE kind <> 4;
CREATE INDEX events_ts_brin ON events USING brin (ts);

-- Create the daily partitions from days_back days ago to days_ahead days
-- ahead; return the range they cover as Unix seconds.
CREATE FUNCTION vigil_ensure_partitions(days_back integer, days_ahead integer,
                                        OUT lo bigint, OUT hi bigint)
    LANGUAGE plpgsql AS $$
DECLARE
    d date;
    first_day date := (now() AT TIME ZONE 'UTC')::date - days_back;
    last_day date := (now() AT TIME ZONE 'UTC')::date + days_ahead;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('vigil_partitions'));
    d := first_day;
    WHILE d <= last_day LOOP
        IF to_regclass(format('events_p%s', to_char(d, 'YYYYMMDD'))) IS NULL THEN
            EXECUTE format('CREATE TABLE events_p%s PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                           to_char(d, 'YYYYMMDD'), d::timestamp AT TIME ZONE 'UTC',
                           (d + 1)::timestamp AT TIME ZONE 'UTC');
        END IF;
        d := d + 1;
    END LOOP;
    lo := extract(epoch FROM first_day::timestamp AT TIME ZONE 'UTC')::bigint;
    hi := extract(epoch FROM (last_day + 1)::timestamp AT TIME ZONE 'UTC')::bigint;
END $$;

-- Drop the daily partitions that end before days_back days ago.
CREATE FUNCTION vigil_drop_partitions(days_back integer) RETURNS integer
    LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n integer := 0;
    cutoff text := to_char((now() AT TIME ZONE 'UTC')::date - days_back, 'YYYYMMDD');
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('vigil_partitions'));
    FOR r IN SELECT c.relname FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'events'::regclass AND c.relname ~ '^events_p[0-9]{8}$'
               AND substr(c.relname, 9) < cutoff LOOP
        EXECUTE format('DROP TABLE %I', r.relname);
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- Events that PostgreSQL refused, kept with the reason instead of blocking
-- the agent. payload is the event as the agent sent it (protobuf).
CREATE TABLE dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    agent_id    integer NOT NULL,
    seq         bigint NOT NULL,
    idx         integer NOT NULL,
    reason      text NOT NULL,
    payload     bytea
);
CREATE INDEX dead_letters_agent ON dead_letters (agent_id, received_at);

-- Apply the container and agent state changes of a commit group, planned
-- by the collector (collector/stateplan.h) so that each statement writes a
-- row at most once: plan = {"pre": [stop], "up": [container], "post":
-- [stop], "full": [{"a", "ids"}], "status": [status]}, every element with
-- its agent id as "a". stop = {"a", "id", "exit_code", "ts" (ns)};
-- container = the object rows_container_json() builds; status = {"a", "ts"
-- and "d" of the latest AgentStatus, "dropped_events", "dropped_batches",
-- "drop_first_ns", "drop_last_ns" of all of them}.
CREATE FUNCTION vigil_apply_state(plan jsonb) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF jsonb_array_length(plan->'pre') > 0 THEN
        PERFORM vigil_apply_stops(plan->'pre');
    END IF;
    IF jsonb_array_length(plan->'up') > 0 THEN
        INSERT INTO containers AS t (agent_id, id, name, runtime, image, image_digest,
            labels, command, uid, gid, privileged, cap_effective, cap_bounding,
            host_pid, host_net, host_ipc, host_uts, mounts, read_only_rootfs,
            seccomp_profile, apparmor_profile, restart_policy, init_pid, created_at,
            started_at, state, last_seen)
        SELECT c.a, c.id, c.name, c.runtime, c.image, c.image_digest, c.labels,
            coalesce(c.command, '{}'), c.uid, c.gid, c.privileged,
            coalesce(c.cap_effective, '{}'), coalesce(c.cap_bounding, '{}'),
            c.host_pid, c.host_net, c.host_ipc, c.host_uts, c.mounts, c.read_only_rootfs,
            c.seccomp_profile, c.apparmor_profile, c.restart_policy, c.init_pid,
            to_timestamp(c.created_ns / 1e9), to_timestamp(c.started_ns / 1e9),
            coalesce(c.state, 'running'), now()
        FROM jsonb_to_recordset(plan->'up') AS c(a integer, id text, name text,
            runtime text, image text, image_digest text, labels jsonb, command text[],
            uid bigint, gid bigint, privileged boolean, cap_effective text[],
            cap_bounding text[], host_pid boolean, host_net boolean, host_ipc boolean,
            host_uts boolean, mounts jsonb, read_only_rootfs boolean, seccomp_profile text,
            apparmor_profile text, restart_policy text, init_pid bigint, created_ns numeric,
            started_ns numeric, state text)
        ON CONFLICT (agent_id, id) DO UPDATE SET
            name = EXCLUDED.name, runtime = EXCLUDED.runtime, image = EXCLUDED.image,
            image_digest = EXCLUDED.image_digest, labels = EXCLUDED.labels,
            command = EXCLUDED.command, uid = EXCLUDED.uid, gid = EXCLUDED.gid,
            privileged = EXCLUDED.privileged, cap_effective = EXCLUDED.cap_effective,
            cap_bounding = EXCLUDED.cap_bounding, host_pid = EXCLUDED.host_pid,
            host_net = EXCLUDED.host_net, host_ipc = EXCLUDED.host_ipc,
            host_uts = EXCLUDED.host_uts, mounts = EXCLUDED.mounts,
            read_only_rootfs = EXCLUDED.read_only_rootfs,
            seccomp_profile = EXCLUDED.seccomp_profile,
            apparmor_profile = EXCLUDED.apparmor_profile,
            restart_policy = EXCLUDED.restart_policy, init_pid = EXCLUDED.init_pid,
            created_at = EXCLUDED.created_at, started_at = EXCLUDED.started_at,
            state = EXCLUDED.state, last_seen = now(),
            stopped_at = CASE WHEN EXCLUDED.state = 'running' THEN NULL ELSE t.stopped_at END,
            exit_code = CASE WHEN EXCLUDED.state = 'running' THEN NULL ELSE t.exit_code END
        -- Periodic snapshots repeat what is known: write only what
        -- changed, and refresh last_seen at most every 10 minutes.
        WHERE (t.name, t.runtime, t.image, t.image_digest, t.labels, t.command, t.uid,
               t.gid, t.privileged, t.cap_effective, t.cap_bounding, t.host_pid,
               t.host_net, t.host_ipc, t.host_uts, t.mounts, t.read_only_rootfs,
               t.seccomp_profile, t.apparmor_profile, t.restart_policy, t.init_pid,
               t.created_at, t.started_at, t.state)
              IS DISTINCT FROM
              (EXCLUDED.name, EXCLUDED.runtime, EXCLUDED.image, EXCLUDED.image_digest,
               EXCLUDED.labels, EXCLUDED.command, EXCLUDED.uid, EXCLUDED.gid,
               EXCLUDED.privileged, EXCLUDED.cap_effective, EXCLUDED.cap_bounding,
               EXCLUDED.host_pid, EXCLUDED.host_net, EXCLUDED.host_ipc, EXCLUDED.host_uts,
               EXCLUDED.mounts, EXCLUDED.read_only_rootfs, EXCLUDED.seccomp_profile,
               EXCLUDED.apparmor_profile, EXCLUDED.restart_policy, EXCLUDED.init_pid,
               EXCLUDED.created_at, EXCLUDED.started_at, EXCLUDED.state)
           OR t.last_seen < now() - interval '10 minutes';
    END IF;
    IF jsonb_array_length(plan->'post') > 0 THEN
        PERFORM vigil_apply_stops(plan->'post');
    END IF;
    IF jsonb_array_length(plan->'full') > 0 THEN
        UPDATE containers AS t SET state = 'removed', last_seen = now()
        FROM jsonb_to_recordset(plan->'full') AS f(a integer, ids text[])
        WHERE t.agent_id = f.a AND t.state IS DISTINCT FROM 'removed'
          AND t.id <> ALL (coalesce(f.ids, '{}'));
    END IF;
    IF jsonb_array_length(plan->'status') > 0 THEN
        UPDATE agents AS t SET
            status = CASE WHEN t.status_at IS NULL OR to_timestamp(s.ts / 1e9) >= t.status_at
                          THEN s.d ELSE t.status END,
            status_at = greatest(t.status_at, to_timestamp(s.ts / 1e9)),
            lost_events = t.lost_events + s.dropped_events,
            lost_batches = t.lost_batches + s.dropped_batches,
            lost_first = least(t.lost_first, to_timestamp(s.drop_first_ns / 1e9)),
            lost_last = greatest(t.lost_last, to_timestamp(s.drop_last_ns / 1e9))
        FROM jsonb_to_recordset(plan->'status') AS s(a integer, ts numeric, d jsonb,
            dropped_events bigint, dropped_batches bigint, drop_first_ns numeric,
            drop_last_ns numeric)
        WHERE t.id = s.a;
    END IF;
END $$;

-- Containers stopped: [{"a", "id", "exit_code", "ts" (ns)}], one per container.
CREATE FUNCTION vigil_apply_stops(stops jsonb) RETURNS void
    LANGUAGE sql AS $$
    INSERT INTO containers AS t (agent_id, id, state, stopped_at, exit_code)
    SELECT s.a, s.id, 'exited', to_timestamp(s.ts / 1e9), s.exit_code
    FROM jsonb_to_recordset(stops) AS s(a integer, id text, exit_code integer, ts numeric)
    ON CONFLICT (agent_id, id) DO UPDATE SET
        state = 'exited', stopped_at = EXCLUDED.stopped_at,
        exit_code = EXCLUDED.exit_code, last_seen = now();
$$;
