# SPDX-License-Identifier: Apache-2.0
"""Batch sequence numbers: a seq above 2^63-1, or more than max_seq_gap
above what the agent has committed, is refused with an Error, never
acknowledged; one such batch cannot poison the identity, whose real
batches are stored after it."""

import vigiltest as vt

BAD_MESSAGE = 2


def refused(a, seq):
    a.send_batch(seq, [vt.exec_event(1, ["/bin/poison"])])
    m = a.recv(timeout=10)
    while m is not None and m.WhichOneof("msg") == "heartbeat":
        m = a.recv(timeout=10)
    assert m is not None and m.WhichOneof("msg") == "error", m
    assert m.error.code == BAD_MESSAGE
    return m.error.message


def stored(db, name):
    return db.query("SELECT count(*) FROM events e JOIN agents a ON a.id = e.agent_id "
                    "WHERE a.name = %s AND e.seq > 0", (name,))[0][0]


def test_seq_out_of_range_is_refused_not_acked(collector_factory, db, agent):
    coll = collector_factory(db, {"--max-seq-gap": "1000"})
    a = agent(coll.port, "seq-window")
    a.hello()
    a.batch(1, [vt.exec_event(1, ["/bin/first"])])
    assert "above 2^63-1" in refused(a, 2**63 + 5)

    a = agent(coll.port, "seq-window")
    assert a.hello().committed_seq == 1
    assert "max_seq_gap" in refused(a, 1 + 1001)

    a = agent(coll.port, "seq-window")
    assert a.hello().committed_seq == 1
    a.batch(2, [vt.exec_event(2, ["/bin/second"])])
    a.batch(1001, [vt.exec_event(3, ["/bin/within-the-window"])])
    assert stored(db, "seq-window") == 3
    assert db.agent_row("seq-window")[1] == 1001


def test_first_contact_may_start_anywhere_below_2_63(collector_factory, db, agent):
    """An identity with nothing committed (a new row, or a database that
    lost it) takes its agent's seq as it comes: the spool is not stuck."""
    coll = collector_factory(db, {"--max-seq-gap": "1000"})
    a = agent(coll.port, "seq-fresh")
    assert a.hello().committed_seq == 0
    a.batch(5000000, [vt.exec_event(1, ["/bin/resumed"])])
    assert stored(db, "seq-fresh") == 1
    assert "above 2^63-1" in refused(a, 2**63)
