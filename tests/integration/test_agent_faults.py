# SPDX-License-Identifier: Apache-2.0
"""vigil-agent under faults: the collector away while containers churn, a
full spool, a missing or silent Docker API socket, hostile strings."""

import os
import subprocess
import time

import vigiltest as vt
from agent_fixtures import *  # noqa: F401,F403 (fixtures)
from agent_fixtures import SilentApi, agent_events, container_row, source_state, statuses

KIND_STARTED, KIND_STOPPED, KIND_EXEC = 2, 3, 4
TRAP3 = ["sh", "-c", 'trap "exit 3" TERM; while :; do sleep 0.1; done']


def wait_rows(fn, what, timeout=30):
    return vt.wait_for(fn, timeout, interval=0.25, what=what)


def test_collector_down_while_containers_churn(db, collector_factory, agent_factory,
                                               runc_factory):
    col = collector_factory(db)
    a = agent_factory(col, "agent-churn")
    assert col.terminate() == 0
    made = []
    for i in range(4):
        c = runc_factory(TRAP3).start()
        made.append(c)
    # the agent notices each start (it scans every second)
    time.sleep(2.5)
    for i, c in enumerate(made):
        c.exec("sh", "-c", "sleep 0.2; echo churn-%d; true" % i)
        c.kill("TERM")
    for c in made:
        c.wait_stopped()
    time.sleep(2)  # the stops are noticed
    # the agent restarts too (SIGTERM flushes the spool; seq survives)
    assert a.terminate() == 0
    a.start(wait_connected=False)
    col.start()
    a.wait_log("connected as", 30)
    for i, c in enumerate(made):
        wait_rows(lambda: agent_events(db, "agent-churn", KIND_STARTED, c.id), "start %d" % i)
        ex = wait_rows(lambda: [r for r in agent_events(db, "agent-churn", KIND_EXEC, c.id)
                                if r[6] == ["sh", "-c", "sleep 0.2; echo churn-%d; true" % i]],
                        "exec %d" % i)
        assert ex
        st = wait_rows(lambda: agent_events(db, "agent-churn", KIND_STOPPED, c.id),
                       "stop %d" % i)
        assert st[0][8]["exit_code"] == 3, (
            "container %d: first stop %r; every event of the container: %r"
            % (i, st[0], agent_events(db, "agent-churn", container=c.id)))
    # sequence numbers went on across the restart: no batch was a replay
    seqs = [r[0] for r in agent_events(db, "agent-churn")]
    assert seqs == sorted(seqs)
    assert "replayed 0" in col.log_text() or "replayed" not in col.log_text()


def test_spool_full_drops_are_reported(db, collector_factory, agent_factory, runc_factory):
    col = collector_factory(db, start=False)
    a = agent_factory(col, "agent-full", wait_connected=False, spool_max_bytes="64KiB",
                      batch_max_events=20)
    n = 1500
    # The burst starts once the container's shell is known to the agent: a
    # process gone before the agent saw any of its container cannot be
    # attributed (README, "Sources"); that race is not what this tests.
    c = runc_factory(["sh", "-c", "sleep 2; i=0; while [ $i -lt %d ]; do /bin/true; "
                      "i=$((i+1)); done; sleep 1000" % n]).start()
    a.wait_log("spool: full", 60)
    col.start()
    a.wait_log("connected as", 30)
    st = wait_rows(lambda: [d for d in statuses(db, "agent-full") if d["dropped_events"]],
                   "an agent-status event with drops")
    assert st[0]["dropped_batches"] > 0
    assert 0 < st[0]["drop_first_ns"] <= st[0]["drop_last_ns"]

    # what was lost is accounted for: once the burst is over and delivered,
    # stored + dropped covers every exec
    def counts():
        dropped = sum(d["dropped_events"] for d in statuses(db, "agent-full"))
        stored = len(agent_events(db, "agent-full", KIND_EXEC, c.id))
        return stored, dropped

    try:
        stored, dropped = wait_rows(lambda: (lambda s, d: (s, d) if s + d >= n else None)(
            *counts()), "every exec stored or counted as dropped")
    except AssertionError:
        raise AssertionError("stored + dropped < %d: %r" % (n, counts()))
    assert stored < n
    assert a.alive()


def test_spool_on_full_filesystem(db, collector_factory, agent_factory, runc_factory, workdir):
    mnt = os.path.join(workdir, "tiny-fs")
    os.makedirs(mnt, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", mnt], check=True)
    try:
        col = collector_factory(db, start=False)
        a = agent_factory(col, "agent-enospc", wait_connected=False,
                          spool_dir=os.path.join(mnt, "spool"), spool_max_bytes="8MiB",
                          batch_max_events=20)
        c = runc_factory(["sh", "-c", "i=0; while [ $i -lt 1500 ]; do /bin/true; "
                          "i=$((i+1)); done; sleep 1000"]).start()
        # the file system fills below spool_max_bytes: the oldest batches go
        a.wait_log("dropping the oldest batches", 60)
        assert a.alive()
        col.start()
        a.wait_log("connected as", 30)
        wait_rows(lambda: [d for d in statuses(db, "agent-enospc") if d["dropped_events"]],
                  "drops reported")
        assert agent_events(db, "agent-enospc", KIND_EXEC, c.id)
    finally:
        subprocess.run(["umount", "-l", mnt], check=False)


def test_api_socket_absent_falls_back(db, collector_factory, agent_factory, runc_factory,
                                      workdir):
    col = collector_factory(db)
    agent_factory(col, "agent-noapi", docker_socket=os.path.join(workdir, "absent.sock"))
    c = runc_factory(TRAP3, caps=["CAP_NET_RAW"]).start()
    wait_rows(lambda: agent_events(db, "agent-noapi", KIND_STARTED, c.id), "start event")
    row = container_row(db, "agent-noapi", c.id)
    assert row["runtime"] == "runc" and "CAP_NET_RAW" in row["cap_effective"]
    st = wait_rows(lambda: [source_state(d, "docker_api") for d in statuses(db, "agent-noapi")
                            if source_state(d, "docker_api")
                            and "connect" in source_state(d, "docker_api")["error"]],
                   "docker_api reported failing")
    assert st[0]["ok"] is False and "No such file" in st[0]["error"]


def test_api_socket_silent_times_out(db, collector_factory, agent_factory, runc_factory,
                                     workdir):
    silent = SilentApi(os.path.join(workdir, "silent.sock"))
    try:
        col = collector_factory(db)
        a = agent_factory(col, "agent-silent", docker_socket=silent.path, api_timeout="500ms")
        c = runc_factory(TRAP3).start()
        wait_rows(lambda: agent_events(db, "agent-silent", KIND_STARTED, c.id), "start event")
        st = wait_rows(lambda: [source_state(d, "docker_api")
                                for d in statuses(db, "agent-silent")
                                if "no answer within 500 ms"
                                in (source_state(d, "docker_api") or {}).get("error", "")],
                       "docker_api reported timing out")
        assert st[0]["ok"] is False
        assert a.alive()
    finally:
        silent.close()


def test_hostile_strings_are_capped_and_repaired(db, collector_factory, agent_factory,
                                                 runc_factory):
    col = collector_factory(db)
    agent_factory(col, "agent-hostile", string_max_bytes="4KiB", argv_max_bytes="32KiB")
    c = runc_factory(["sleep", "1000"]).start()
    wait_rows(lambda: agent_events(db, "agent-hostile", KIND_STARTED, c.id), "start event")
    # ten arguments of 100 KB (1 MB in all) with invalid UTF-8 and control bytes
    script = ('b=$(head -c 100000 /dev/zero | tr "\\000" "A"); '
              'x=$(printf "\\377\\376\\001\\033[31m"); '
              'exec sh -c "sleep 2; true" hostile "$x$b" "$b$x" "$b" "$b" "$b" "$b" "$b" "$b" "$b"'
              ' "$b"')
    c.exec("sh", "-c", script)
    rows = wait_rows(lambda: [r for r in agent_events(db, "agent-hostile", KIND_EXEC, c.id)
                              if r[6] and r[6][:3] == ["sh", "-c", "sleep 2; true"]],
                     "the hostile exec")
    argv = rows[0][6]
    assert rows[0][8] and rows[0][8].get("truncated") is True
    assert sum(len(x.encode()) for x in argv) <= 32 * 1024 + 64
    assert all(len(x.encode()) <= 4096 for x in argv)
    assert argv[3] == "hostile"
    assert argv[4].startswith("????[31mAAAA") and argv[4].endswith("...[truncated]")
    # nothing went to the dead letters: every string was valid for PostgreSQL
    assert db.scalar("SELECT count(*) FROM dead_letters") == 0
