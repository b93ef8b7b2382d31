# SPDX-License-Identifier: Apache-2.0
"""Two connections with the same agent certificate (--duplicate-policy)."""

import vigiltest as vt


def test_replace_closes_the_older_connection(collector_factory, db, agent, pki):
    _, P = vt.pb()
    coll = collector_factory(db, {"--duplicate-policy": "replace"})
    name = "dup-replace"
    first = agent(coll.port, name)
    assert first.hello().committed_seq == 0
    first.batch(1, [vt.exec_event(1, ["/bin/first"])])

    second = agent(coll.port, name)
    assert second.hello().committed_seq == 1
    msgs = first.read_until_close(10)
    err = vt.error_of(msgs)
    assert err is not None and err.code == P.ERROR_CODE_REPLACED, msgs

    second.batch(2, [vt.exec_event(2, ["/bin/second"])])
    second.batch(3, [vt.exec_event(3, ["/bin/second"])])
    assert db.agent_row(name)[1] == 3
    assert [(s, a) for s, _, _, a in db.events_of(name)] == [
        (1, ["/bin/first"]), (2, ["/bin/second"]), (3, ["/bin/second"])]
    vt.check_serves(coll, db, pki, "dup-other")


def test_reject_keeps_the_older_connection(collector_factory, db, agent, pki):
    coll = collector_factory(db, {"--duplicate-policy": "reject"})
    name = "dup-reject"
    first = agent(coll.port, name)
    first.hello()
    first.batch(1, [vt.exec_event(1, ["/bin/first"])])

    second = agent(coll.port, name)
    second.send_hello()
    msgs = second.read_until_close(10)
    assert not any(m.WhichOneof("msg") == "welcome" for m in msgs), msgs
    assert vt.error_of(msgs) is not None, "refused without an Error: %s" % msgs

    first.batch(2, [vt.exec_event(2, ["/bin/first"])])
    assert db.agent_row(name)[1] == 2
    assert len(db.events_of(name)) == 2
    vt.check_serves(coll, db, pki, "dup-other-2")
