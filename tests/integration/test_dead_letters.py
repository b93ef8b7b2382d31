# SPDX-License-Identifier: Apache-2.0
"""Events that PostgreSQL refuses (invalid UTF-8 in argv) go to
dead_letters; the rest of their batch is stored, and every batch is
acknowledged."""

import re

import vigiltest as vt

AGENTS, BATCH, EVENTS, BAD_EVERY = 4, 100, 20000, 50


def test_invalid_utf8_goes_to_dead_letters(collector_factory, loadgen_factory, db):
    coll = collector_factory(db)
    lg = loadgen_factory(coll, agents=AGENTS, batch_events=BATCH, events=EVENTS,
                         window=4, bad_every=BAD_EVERY, agent_prefix="dl-", timeout=120)
    rc = lg.wait(180)
    assert rc == 0, "loadgen exited %d:\n%s" % (rc, lg.stderr_text()[-3000:])
    s = lg.summary()
    assert s["events_sent"] == EVENTS
    assert s["events_acked"] == EVENTS
    assert s["errors"] == 0

    stored = db.scalar("SELECT count(*) FROM events WHERE seq > 0")  # the agents' events
    dead = db.scalar("SELECT count(*) FROM dead_letters")
    assert stored + dead == EVENTS, (stored, dead)
    assert dead == EVENTS // BAD_EVERY

    # Each event is either a row or a dead letter, exactly once.
    assert db.scalar(
        "SELECT count(*) FROM (SELECT agent_id, seq, idx FROM events WHERE seq > 0 "
        "UNION ALL SELECT agent_id, seq, idx FROM dead_letters) u") == EVENTS
    assert db.scalar(
        "SELECT count(DISTINCT (agent_id, seq, idx)) FROM (SELECT agent_id, seq, idx "
        "FROM events WHERE seq > 0 UNION ALL SELECT agent_id, seq, idx FROM dead_letters) u") \
        == EVENTS

    for reason, payload_len in db.query(
            "SELECT reason, length(payload) FROM dead_letters"):
        assert re.search(r"utf-?8|encoding|byte sequence", reason, re.I), reason
        assert payload_len and payload_len > 0

    # The payload is the event as sent: a PROCESS_EXEC whose argv holds
    # the invalid bytes.
    E, _ = vt.pb()
    for (payload,) in db.query("SELECT payload FROM dead_letters"):
        fields = _fields(bytes(payload))
        assert fields.get(2) == [E.EVENT_KIND_PROCESS_EXEC]
        argv = _fields(fields[13][0]).get(6, [])
        assert any(not _utf8(a) for a in argv), argv

    per_agent = db.query("SELECT name, committed_seq FROM agents ORDER BY name")
    assert len(per_agent) == AGENTS
    assert all(seq == EVENTS // AGENTS // BATCH for _, seq in per_agent), per_agent
    coll.assert_clean_log()


def _utf8(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _varint(buf, i):
    v = shift = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def _fields(buf):
    """Protobuf wire fields of BUF: {number: [int or bytes, ...]}, without
    the UTF-8 check a generated parser would make."""
    out, i = {}, 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out
