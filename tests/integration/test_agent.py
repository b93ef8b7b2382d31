# SPDX-License-Identifier: Apache-2.0
"""vigil-agent end to end: real containers (runc, and Podman with runc),
the real agent, the real collector and PostgreSQL; the rows tell."""

import os

import vigiltest as vt
from agent_fixtures import *  # noqa: F401,F403 (fixtures)
from agent_fixtures import agent_events, container_row, source_state, statuses

TRAP3 = ["sh", "-c", 'trap "exit 3" TERM; while :; do sleep 0.1; done']
KIND_STARTED, KIND_STOPPED, KIND_EXEC, KIND_STATUS = 2, 3, 4, 5


def wait_rows(fn, what, timeout=20):
    return vt.wait_for(fn, timeout, interval=0.2, what=what)


def test_runc_container_exec_and_exit_code(db, collector_factory, agent_factory, runc_factory,
                                           workdir):
    col = collector_factory(db)
    agent_factory(col, "agent-runc")
    c = runc_factory(TRAP3, caps=["CAP_SYS_ADMIN"], mounts=[("/etc", "/hostetc", True)],
                     host_net=True).start()
    wait_rows(lambda: agent_events(db, "agent-runc", KIND_STARTED, c.id), "start event")
    c.exec("sh", "-c", "echo hello-from-exec; sleep 0.3; true")
    ex = wait_rows(lambda: [r for r in agent_events(db, "agent-runc", KIND_EXEC, c.id)
                            if r[6] == ["sh", "-c", "echo hello-from-exec; sleep 0.3; true"]], "exec event")
    assert ex[0][5] == "/bin/busybox" and ex[0][7] == "/"
    c.kill("TERM")
    stop = wait_rows(lambda: agent_events(db, "agent-runc", KIND_STOPPED, c.id), "stop event")
    assert stop[0][8]["exit_code"] == 3
    row = container_row(db, "agent-runc", c.id)
    assert row["runtime"] == "runc"
    assert "CAP_SYS_ADMIN" in row["cap_effective"]
    assert row["host_net"] and not row["host_pid"] and not row["host_ipc"]
    assert {"source": "/etc", "destination": "/hostetc", "read_only": True,
            "type": "bind"} in row["mounts"]
    assert row["read_only_rootfs"] is True
    assert row["command"] == TRAP3
    assert row["state"] == "exited" and row["exit_code"] == 3
    # the connect-time snapshot carried the host facts
    inv = agent_events(db, "agent-runc", 1)
    assert inv and inv[0][8]["full"] and inv[0][8]["host"]["agent_version"].startswith(
        "vigil-agent/")


def test_podman_privileged_container(db, collector_factory, agent_factory, podman, podman_api,
                                     workdir):
    """The issue's scenario: a privileged Podman container with a host
    mount and an added capability; a shell exec'ed inside; stopped with
    exit code 3."""
    hostdir = os.path.join(workdir, "podman-hostdir")
    os.makedirs(hostdir, exist_ok=True)
    col = collector_factory(db)
    agent_factory(col, "agent-podman", docker_socket=podman_api.sock)
    name = "vigil-it-priv-%d" % os.getpid()
    cid = podman.run(name, TRAP3, ["--privileged", "--cap-add", "NET_ADMIN",
                                   "-v", "%s:/host:ro" % hostdir, "--label", "team=red"])
    wait_rows(lambda: agent_events(db, "agent-podman", KIND_STARTED, cid), "start event")
    podman.exec(name, "sh", "-c", "id; echo pwned > /tmp/owned; sleep 0.3; true")
    ex = wait_rows(lambda: [r for r in agent_events(db, "agent-podman", KIND_EXEC, cid)
                            if r[6] == ["sh", "-c", "id; echo pwned > /tmp/owned; sleep 0.3; true"]],
                   "exec event")
    assert ex[0][5] == "/bin/busybox"
    podman.stop(name)
    assert podman.inspect(name, "{{.State.ExitCode}}") == "3"
    stop = wait_rows(lambda: agent_events(db, "agent-podman", KIND_STOPPED, cid), "stop event")
    assert stop[0][8]["exit_code"] == 3
    row = wait_rows(lambda: container_row(db, "agent-podman", cid), "container row")
    assert row["name"] == name
    assert row["runtime"] == "podman"
    assert row["image"] == podman.image
    assert row["privileged"] is True
    assert row["restart_policy"] == "no"  # podman's default, from the inspect JSON
    assert "CAP_SYS_ADMIN" in row["cap_effective"] and "CAP_NET_ADMIN" in row["cap_effective"]
    assert any(m["destination"] == "/host" and m["source"] == hostdir and m["read_only"]
               for m in row["mounts"]), row["mounts"]
    assert row["labels"] == {"team": "red"}
    assert row["state"] == "exited" and row["exit_code"] == 3
    # the API source was reported working
    st = [source_state(d, "docker_api") for d in statuses(db, "agent-podman")]
    assert any(s and s["ok"] for s in st), st
