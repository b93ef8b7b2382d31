# SPDX-License-Identifier: Apache-2.0
"""The agent's new facts as the collector stores them: tri-state facts as
JSON null, the new container facts, the exec facts, uid-change events and
the agent-status losses."""

import os

import pytest

import vigiltest as vt
from agent_fixtures import *  # noqa: F401,F403 (fixtures)
from agent_fixtures import agent_events, run, statuses

LOOP = ["sh", "-c", "while :; do sleep 0.2; done"]
KIND_STARTED, KIND_EXEC, KIND_UID_CHANGE = 2, 4, 8
MiB = 1024 * 1024


def wait_rows(fn, what, timeout=30):
    return vt.wait_for(fn, timeout, interval=0.2, what=what)


def started_json(db, agent, cid):
    rows = wait_rows(lambda: agent_events(db, agent, KIND_STARTED, cid), "start event")
    return rows[0][8]["container"]


def test_rows_runc_facts_and_unknowns(db, collector_factory, agent_factory, runc_factory):
    col = collector_factory(db)
    agent_factory(col, "rows-runc")

    def edit(cfg):
        cfg["process"]["noNewPrivileges"] = True
        cfg["linux"].setdefault("resources", {})["memory"] = {"limit": 64 * MiB}

    c = runc_factory(LOOP, spec_edit=edit).start()
    j = started_json(db, "rows-runc", c.id)
    assert j["no_new_privs"] is True
    assert j["seccomp_mode"] == "disabled"
    assert j["memory_limit"] == 64 * MiB
    assert j["cpu_limit"] == "unlimited"  # no quota set
    assert j["pids_limit"] == "unlimited" or isinstance(j["pids_limit"], int)
    assert j["host_user"] is True
    # no API for runc: published ports are unknown, not empty
    assert j["ports"] is None
    assert j["privileged"] is False
    assert "cgroup" in j["found_by"]
    # the containers table: the newer facts in facts, unknown ones null
    facts, priv = wait_rows(lambda: db.query("SELECT facts, privileged FROM containers "
                                             "WHERE id = %s AND facts IS NOT NULL", (c.id,)),
                            "container row")[0]
    assert facts["no_new_privs"] is True and facts["memory_limit"] == 64 * MiB
    assert facts["ports"] is None and priv is False
    c.exec("sh", "-c", "sleep 0.5; true")
    ex = wait_rows(lambda: [r for r in agent_events(db, "rows-runc", KIND_EXEC, c.id)
                            if r[6] == ["sh", "-c", "sleep 0.5; true"]], "exec")
    d = ex[0][8]
    assert d["exec_session"] is True and d["tty"] is False and d["exe_memfd"] is False
    assert d["exe_upper_layer"] is None
    assert d["parent_executable"] and d["real_uid"] == 0


def test_rows_uid_change_and_losses(db, collector_factory, agent_factory, runc_factory):
    col = collector_factory(db)
    agent_factory(col, "rows-uid", status_interval="1s")

    def edit(cfg):
        cfg["process"]["noNewPrivileges"] = False

    c = runc_factory(LOOP, spec_edit=edit, caps=["CAP_SETUID"]).start()
    wait_rows(lambda: agent_events(db, "rows-uid", KIND_STARTED, c.id), "start event")
    run(["runc", "exec", "--user", "1000:1000", c.id, "/usr/bin/suid-root"])
    u = wait_rows(lambda: agent_events(db, "rows-uid", KIND_UID_CHANGE, c.id), "uid change")
    d = u[0][8]
    assert (d["old_real_uid"], d["new_real_uid"], d["new_effective_uid"]) == (1000, 0, 0)
    assert d["executable"] == "/usr/bin/suid-root"
    # every status event lists the losses that ever happened (maybe none)
    st = wait_rows(lambda: statuses(db, "rows-uid"), "a status event")
    assert isinstance(st[-1].get("losses", []), list)


def test_rows_podman_api_facts(db, collector_factory, agent_factory, podman, podman_api,
                               workdir):
    col = collector_factory(db)
    agent_factory(col, "rows-podman", docker_socket=podman_api.sock)
    port = vt.free_port()
    name = "vigil-it-rows-%d" % os.getpid()
    r = run(["podman", "run", "-d", "--name", name, "--runtime", "runc",
             "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1000:1000",
             "-p", "127.0.0.1:%d:80" % port, "--device", "/dev/null:/dev/vigil-null",
             "--restart", "on-failure:3", "--pids-limit", "100", podman.image] + LOOP,
            timeout=120)
    podman.names.append(name)
    cid = r.stdout.strip().splitlines()[-1]
    j = started_json(db, "rows-podman", cid)
    assert j["ports"] == [{"container_port": "80/tcp", "host_ip": "127.0.0.1",
                           "host_port": port}]
    # Podman's API reports no cgroup permissions for a device: kept as sent
    assert {"path_on_host": "/dev/null", "path_in_container": "/dev/vigil-null",
            "permissions": ""}.items() <= j["devices"][0].items()
    assert j["restart_policy"] == "on-failure" and j["restart_max_retries"] == 3
    assert j["pids_limit"] == 100
