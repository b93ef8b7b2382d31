# SPDX-License-Identifier: Apache-2.0
"""What containers do to confuse the agent: exec from a file deleted before
the exec, a process that clears its command line at once, and many
containers created at the same moment. The agent keeps running, reports
what it could read (flagged when incomplete) and every container gets its
API metadata."""

import concurrent.futures
import os

import pytest

import vigiltest as vt
from agent_fixtures import *  # noqa: F401,F403 (fixtures)
from agent_fixtures import PODMAN_RUN, agent_events, run

KIND_EXEC = 4


def wait_rows(fn, what, timeout=30):
    return vt.wait_for(fn, timeout, interval=0.2, what=what)


@pytest.mark.serial
def test_deleted_executable_and_cleared_argv(db, collector_factory, agent_factory,
                                             runc_factory):
    col = collector_factory(db)
    agent = agent_factory(col, "bad-exec")
    c = runc_factory(["sleep", "1000"]).start()
    c.exec("/usr/bin/deleted-sleep", "1")
    # deleted-sleep's own exec, read late, can find the process inside its
    # fexecve: the new executable, no arguments yet (flagged incomplete);
    # the fexecve's event then has them
    rows = wait_rows(lambda: [r for r in agent_events(db, "bad-exec", KIND_EXEC, c.id)
                              if r[5] and r[5].startswith("/tmp/.vigil-deleted")
                              and not (r[8] or {}).get("incomplete")], "the exec")
    exe, argv = rows[0][5], rows[0][6]
    assert exe.endswith("(deleted)"), exe  # the kernel's name for it, kept
    assert argv == ["sleep", "1"], argv
    # and the rules saw a binary run from /tmp
    wait_rows(lambda: db.query("SELECT 1 FROM findings WHERE container_id = %s AND "
                               "rule = 'exec_from_tmp'", (c.id,)), "the finding")

    c.exec("/usr/bin/argv-clear", "secret-one", "secret-two")
    rows = wait_rows(lambda: [r for r in agent_events(db, "bad-exec", KIND_EXEC, c.id)
                              if r[5] == "/usr/bin/argv-clear"], "the argv-clear exec")
    argv, details = rows[0][6], rows[0][8] or {}
    # read before or after it cleared them: the arguments as started, or
    # nothing, flagged incomplete; never the cleared bytes as text
    assert argv == ["/usr/bin/argv-clear", "secret-one", "secret-two"] or (
        not argv and details.get("incomplete") is True), (argv, details)
    assert agent.alive()


def test_many_containers_at_once_get_api_metadata(db, collector_factory, agent_factory,
                                                  podman, podman_api):
    col = collector_factory(db)
    agent_factory(col, "bad-many", docker_socket=podman_api.sock)
    names = ["vigil-many-%d-%02d" % (os.getpid(), i) for i in range(70)]
    podman.names.extend(names)

    def start(name):
        r = run(["podman", "run", "-d", "--name", name, "--label", "batch=many"] + PODMAN_RUN
                + [podman.image, "sleep", "1000"], timeout=300)
        return r.stdout.strip().splitlines()[-1]

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        ids = list(pool.map(start, names))

    def named():
        rows = db.query("SELECT id, name, labels->>'batch' FROM containers WHERE id = ANY(%s)",
                        (ids,))
        return len(rows) == len(ids) and all(r[1] in names and r[2] == "many" for r in rows)
    wait_rows(named, "70 containers with their API names and labels", timeout=90)
