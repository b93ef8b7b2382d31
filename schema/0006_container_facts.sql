-- SPDX-License-Identifier: Apache-2.0
-- The agent's newer container facts and its uid-change events.
--
-- A container object (rows_container_json) carries, besides the columns of
-- the containers table, facts such as no_new_privs, seccomp_mode, limits,
-- devices, ports and repo_digests (README.md, "Agent"): they are kept in
-- containers.facts, as the agent reported them (null: no source could
-- establish it). A fact that no source established is null in the columns
-- too (privileged, host_*, mounts, profiles...): unknown, never false.

ALTER TABLE containers ADD COLUMN facts jsonb;

INSERT INTO event_kinds VALUES (8, 'process_uid_change') ON CONFLICT DO NOTHING;

-- The keys of a container object that have a column of their own (and the
-- plan's agent id "a"): every other key goes to facts.
CREATE FUNCTION vigil_container_columns() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ARRAY['a', 'id', 'name', 'runtime', 'image', 'image_digest', 'labels', 'command',
                 'uid', 'gid', 'privileged', 'cap_effective', 'cap_bounding', 'host_pid',
                 'host_net', 'host_ipc', 'host_uts', 'mounts', 'read_only_rootfs',
                 'seccomp_profile', 'apparmor_profile', 'restart_policy', 'init_pid',
                 'created_ns', 'started_ns', 'state']
$$;

-- vigil_apply_state of 0001_init.sql, storing the facts as well.
CREATE OR REPLACE FUNCTION vigil_apply_state(plan jsonb) RETURNS void
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
            started_at, state, facts, last_seen)
        SELECT c.a, c.id, c.name, c.runtime, c.image, c.image_digest, c.labels,
            coalesce(c.command, '{}'), c.uid, c.gid, c.privileged,
            coalesce(c.cap_effective, '{}'), coalesce(c.cap_bounding, '{}'),
            c.host_pid, c.host_net, c.host_ipc, c.host_uts, c.mounts, c.read_only_rootfs,
            c.seccomp_profile, c.apparmor_profile, c.restart_policy, c.init_pid,
            to_timestamp(c.created_ns / 1e9), to_timestamp(c.started_ns / 1e9),
            coalesce(c.state, 'running'), nullif(j - vigil_container_columns(), '{}'), now()
        FROM jsonb_array_elements(plan->'up') AS j,
             jsonb_to_record(j) AS c(a integer, id text, name text,
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
            state = EXCLUDED.state, facts = EXCLUDED.facts, last_seen = now(),
            stopped_at = CASE WHEN EXCLUDED.state = 'running' THEN NULL ELSE t.stopped_at END,
            exit_code = CASE WHEN EXCLUDED.state = 'running' THEN NULL ELSE t.exit_code END
        -- Periodic snapshots repeat what is known: write only what
        -- changed, and refresh last_seen at most every 10 minutes.
        WHERE (t.name, t.runtime, t.image, t.image_digest, t.labels, t.command, t.uid,
               t.gid, t.privileged, t.cap_effective, t.cap_bounding, t.host_pid,
               t.host_net, t.host_ipc, t.host_uts, t.mounts, t.read_only_rootfs,
               t.seccomp_profile, t.apparmor_profile, t.restart_policy, t.init_pid,
               t.created_at, t.started_at, t.state, t.facts)
              IS DISTINCT FROM
              (EXCLUDED.name, EXCLUDED.runtime, EXCLUDED.image, EXCLUDED.image_digest,
               EXCLUDED.labels, EXCLUDED.command, EXCLUDED.uid, EXCLUDED.gid,
               EXCLUDED.privileged, EXCLUDED.cap_effective, EXCLUDED.cap_bounding,
               EXCLUDED.host_pid, EXCLUDED.host_net, EXCLUDED.host_ipc, EXCLUDED.host_uts,
               EXCLUDED.mounts, EXCLUDED.read_only_rootfs, EXCLUDED.seccomp_profile,
               EXCLUDED.apparmor_profile, EXCLUDED.restart_policy, EXCLUDED.init_pid,
               EXCLUDED.created_at, EXCLUDED.started_at, EXCLUDED.state, EXCLUDED.facts)
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
