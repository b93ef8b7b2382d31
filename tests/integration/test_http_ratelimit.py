# SPDX-License-Identifier: Apache-2.0
"""The HTTPS rate limit against a real collector: clients are bucketed by
IPv4 address, by IPv6 /64 (two addresses of one /64 share a bucket, another
/64 has its own), and IPv4 clients of a dual-stack listener (IPv4-mapped
IPv6 peers) by their IPv4 address; and a flood of new client addresses
that fills the bucket table neither evicts a throttled client's bucket
(which would hand it a fresh burst) nor gets a fresh burst per address.

Client addresses: 127.0.0.0/8 is all loopback, so a socket can be bound
to any of it; the IPv6 ones (in a ULA prefix of this test's own) are added
to lo for the test and removed after it, which needs root."""

import socket
import subprocess
import time

import pytest

import apitest as at
import vigiltest as vt

PREFIX = "fd7e:5a11:c0:"
NET1 = [PREFIX + "1::1", PREFIX + "1::2", PREFIX + "1:ffff::3"]  # one /64
NET2 = [PREFIX + "2::1"]  # another
SLOTS = 4096  # RATELIMIT_SLOTS
PROBES = 8  # RATELIMIT_PROBES


def ip(*args):
    return subprocess.run(["ip"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def v6_addrs():
    added = []
    for a in NET1 + NET2:
        r = ip("-6", "addr", "add", a + "/128", "dev", "lo", "nodad")
        if r.returncode != 0 and "File exists" not in r.stderr:
            for b in added:
                ip("-6", "addr", "del", b + "/128", "dev", "lo")
            pytest.fail("cannot add %s to lo: %s" % (a, r.stderr.strip()))
        added.append(a)
    yield
    for a in added:
        ip("-6", "addr", "del", a + "/128", "dev", "lo")


BURST = 20


@pytest.fixture(scope="module")
def env(module_collector_factory, module_db, pki):
    port = vt.free_port()
    # one listener for IPv6 and (IPv4-mapped) IPv4 clients; a token a
    # second, bursts of 20: a fresh bucket is easy to tell from one that
    # was emptied a few seconds before
    coll = module_collector_factory(module_db, flags={
        "--http-listen": "[::]:%d" % port,
        "--http-rate-limit": "1",
        "--http-rate-burst": str(BURST),
    })
    # and one listening on IPv4 only, whose peers are plain IPv4 addresses
    port4 = vt.free_port()
    module_collector_factory(module_db, flags={
        "--http-listen": "127.0.0.1:%d" % port4,
        "--http-rate-limit": "1",
        "--http-rate-burst": str(BURST),
    })
    yield {"port": port, "port4": port4, "pki": pki, "coll": coll}


def healthz(env, src, port=None):
    """The status of GET /healthz on a new connection from address SRC (to
    PORT, the dual-stack listener's if not given)."""
    v6 = ":" in src
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.bind((src, 0))
        s.connect(("::1" if v6 else "127.0.0.1", port or env["port"]))
        t = at.https_context(env["pki"]).wrap_socket(s, server_hostname="localhost")
        t.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        out = at.read_all(t, 10)
        t.close()
    finally:
        s.close()
    return int(out.split(b" ", 2)[1])


def granted(env, src, n, port=None):
    """How many of N requests from SRC in a row are answered 200 (the rest
    must be 429)."""
    codes = [healthz(env, src, port) for _ in range(n)]
    assert set(codes) <= {200, 429}, codes
    return codes.count(200)


def drain(env, src, port=None):
    """Empty SRC's bucket; return when it was empty (time.monotonic())."""
    assert granted(env, src, BURST + 3, port) >= BURST - 1
    return time.monotonic()


def refilled(since):
    """The most tokens a bucket emptied at SINCE can have got back by now."""
    return int(time.monotonic() - since) + 1


@pytest.mark.serial
def test_ipv6_clients_share_a_bucket_per_64(env, v6_addrs):
    a1, a2, a3 = NET1
    t = drain(env, a1)
    # other addresses of the same /64: the same, empty bucket
    n = granted(env, a2, 5) + granted(env, a3, 5)
    assert n <= refilled(t), n
    # another /64 is another client, with a bucket of its own
    assert granted(env, NET2[0], BURST) == BURST


def test_ipv4_mapped_clients_by_address(env):
    """IPv4 clients of the dual-stack listener arrive as ::ffff:a.b.c.d:
    each IPv4 address is a client of its own (the /64 of those would be one
    bucket for every IPv4 client)."""
    t = drain(env, "127.0.9.1")
    assert granted(env, "127.0.9.1", 5) <= refilled(t)
    assert granted(env, "127.0.9.2", BURST) == BURST


def fnv(s):
    """The table's hash of a bucket key (http_fnv: FNV-1a, 32 bits)."""
    x = 2166136261
    for c in s.encode():
        x = ((x ^ c) * 16777619) & 0xFFFFFFFF
    return x


def test_a_flood_of_new_clients_does_not_reset_a_throttled_bucket(env):
    """Throttle one client, then bring more new clients whose buckets fall
    into exactly its slots of the table than those slots can hold: were its
    bucket evicted for one of them (the least recently used, as it was),
    it would come back to a fresh burst. It stays throttled. (The IPv4-only
    listener: there the bucket key is the peer address as written.)"""
    port = env["port4"]
    victim = "127.0.77.1"
    slot = fnv(victim) % SLOTS
    rivals = []
    b = 0
    while len(rivals) < 2 * PROBES:
        b += 1
        cand = "127.%d.%d.%d" % (100 + (b >> 16), (b >> 8) & 255, b & 255)
        if fnv(cand) % SLOTS == slot:
            rivals.append(cand)
    t = drain(env, victim, port)
    for r in rivals:
        assert granted(env, r, 1, port) <= 1
    n = granted(env, victim, 10, port)
    assert n <= refilled(t), n
