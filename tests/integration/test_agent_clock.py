# SPDX-License-Identifier: Apache-2.0
"""An event whose time falls outside the partitions is stored at its
receive time, and the agent's own time is kept with it (details
agent_time_ns), so a wrong clock on a node loses nothing."""

import vigiltest as vt

PAST = 631152000 * 10**9 + 123      # 1990-01-01, not a partition
FUTURE = 4102444800 * 10**9 + 456   # 2100-01-01


def test_clock_outside_the_partitions_is_kept(collector_factory, db, agent):
    coll = collector_factory(db)
    a = agent(coll.port, "skewed-clock")
    a.hello()
    now = vt.now_ns()
    a.batch(1, [vt.exec_event(1, ["/bin/past"], ts=PAST),
                vt.exec_event(2, ["/bin/future"], ts=FUTURE),
                vt.exec_event(3, ["/bin/now"], ts=now)])
    rows = db.query(
        "SELECT e.argv[1], (extract(epoch FROM e.ts) * 1e9)::bigint, "
        "(extract(epoch FROM e.recv_ts) * 1e9)::bigint, e.details->>'agent_time_ns' "
        "FROM events e JOIN agents a ON a.id = e.agent_id "
        "WHERE a.name = 'skewed-clock' AND e.seq > 0 ORDER BY e.idx")
    (p, p_ts, p_recv, p_agent), (f, f_ts, f_recv, f_agent), (n, n_ts, _, n_agent) = rows
    assert (p, f, n) == ("/bin/past", "/bin/future", "/bin/now")
    assert p_ts == p_recv and int(p_agent) == PAST
    assert f_ts == f_recv and int(f_agent) == FUTURE
    assert n_agent is None and abs(n_ts - now) < 10**6
