# SPDX-License-Identifier: Apache-2.0
"""SIGTERM under load: the collector commits and acknowledges what it has
queued and exits 0; everything any agent saw acknowledged is stored; a new
collector on the same port lets the agents finish with nothing lost or
duplicated."""

import select
import ssl
import threading
import time

import vigiltest as vt

AGENTS, BATCH, EVENTS = 8, 200, 96000
RAW_AGENTS, RAW_PER, RAW_WINDOW = 3, 50, 8


class PipelinedAgent(threading.Thread):
    """Sends batches with up to RAW_WINDOW unacknowledged until the
    collector closes; records what was acknowledged."""

    def __init__(self, port, pki, name):
        super().__init__(daemon=True)
        cert, key = pki.agent(name)
        self.name_ = name
        self.a = vt.RawAgent(port, vt.client_context(pki, cert, key), timeout=30)
        self.acked = 0
        self.sent = 0
        self.msgs = []
        self.error = None

    def run(self):
        try:
            self.a.connect()
            self.a.hello()
            sending = True
            while True:
                if sending and self.sent - self.acked < RAW_WINDOW:
                    try:
                        self.a.send_batch(self.sent + 1, [
                            vt.exec_event(i, ["/bin/drain", str(self.sent + 1), str(i)])
                            for i in range(RAW_PER)])
                        self.sent += 1
                    except (ConnectionError, ssl.SSLError):
                        sending = False  # closed for writing: read what is left
                    continue
                r, _, _ = select.select([self.a.sock], [], [], 30)
                if not r and not self.a.sock.pending():
                    self.error = "no ack for 30s"
                    return
                m = self.a.recv(30)
                self.msgs.append(m)
                if m.WhichOneof("msg") == "ack":
                    assert m.ack.seq > self.acked
                    self.acked = m.ack.seq
        except (vt.Closed, ConnectionError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            pass  # the collector closed the connection
        except Exception as e:  # reported by the test
            self.error = repr(e)
        finally:
            self.a.close()


def test_sigterm_drains_and_exits_0(collector_factory, loadgen_factory, db, pki):
    coll = collector_factory(db, {"--drain-timeout": "20s"})
    lg = loadgen_factory(coll, agents=AGENTS, batch_events=BATCH, events=EVENTS, window=8,
                         rate=EVENTS // 12, agent_prefix="drain-", timeout=180)
    raw = [PipelinedAgent(coll.port, pki, "drain-raw-%d" % i) for i in range(RAW_AGENTS)]
    for r in raw:
        r.start()

    def loadgen_stored():
        return BATCH * (db.scalar(
            "SELECT coalesce(sum(committed_seq), 0) FROM agents "
            "WHERE name NOT LIKE 'drain-raw-%'") or 0) if db.table_exists("agents") else 0

    vt.wait_for(lambda: loadgen_stored() >= EVENTS * 0.2, 120, interval=0.2,
                what="a fifth of the load stored")
    assert lg.proc.poll() is None, "loadgen finished too early"
    assert all(r.is_alive() for r in raw), [r.error for r in raw]

    t0 = time.monotonic()
    rc = coll.terminate(timeout=60)
    took = time.monotonic() - t0
    assert rc == 0, "collector exited %d on SIGTERM" % rc
    assert took < 25, "drain took %.1fs, more than --drain-timeout" % took
    for r in raw:
        r.join(30)
        assert not r.is_alive()
        assert r.error is None, (r.name_, r.error)

    # Everything acknowledged is stored, whole, and everything stored was
    # acknowledged before the connection closed.
    for r in raw:
        row = db.agent_row(r.name_)
        assert row is not None and row[1] == r.acked, (r.name_, row, r.acked)
        seqs = db.query("SELECT seq, count(*) FROM events WHERE agent_id = %s AND seq > 0 "
                        "GROUP BY seq ORDER BY seq", (row[0],))
        assert seqs == [(s, RAW_PER) for s in range(1, row[1] + 1)], r.name_
        print("%s: sent %d, acked %d, committed %d" % (r.name_, r.sent, r.acked, row[1]))
    assert any(r.acked > 0 for r in raw)
    coll.assert_clean_log()

    # A new collector on the same port: the load generator finishes, and
    # nothing was lost or stored twice across the graceful restart.
    coll.start()
    rc = lg.wait(240)
    assert rc == 0, "loadgen exited %d:\n%s" % (rc, lg.stderr_text()[-3000:])
    s = lg.summary()
    assert s["events_acked"] == EVENTS
    total, distinct = db.query(
        "SELECT count(*), count(DISTINCT (e.agent_id, e.seq, e.idx)) FROM events e "
        "JOIN agents a ON a.id = e.agent_id WHERE a.name NOT LIKE 'drain-raw-%' "
        "AND e.seq > 0")[0]
    assert total == distinct == EVENTS, (total, distinct)
    for name, committed in db.query(
            "SELECT name, committed_seq FROM agents WHERE name NOT LIKE 'drain-raw-%'"):
        assert committed == EVENTS // AGENTS // BATCH, name
