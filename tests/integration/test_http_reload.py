# SPDX-License-Identifier: Apache-2.0
"""SIGHUP while the HTTPS side authenticates operator certificates: the
settings it reads (the operator CA, the admin CNs, every string) are a
snapshot that a reload replaces, never frees under a reader. Run under
AddressSanitizer (the asan suite) and ThreadSanitizer (scripts/test.sh
builds the collector with VIGIL_TSAN for this file)."""

import http.client
import json
import os
import signal
import threading
import time

import apitest as at
import vigiltest as vt

RELOADS = 40
OTHER_CNS = ",".join("ops-other-%02d-with-a-longer-name" % i for i in range(20))


def write_config(path, admin_cns):
    with open(path + ".new", "w") as f:
        f.write("http_admin_cns = %s\n" % admin_cns)
    os.rename(path + ".new", path)


def test_reload_under_operator_requests(collector_factory, db, pki, workdir):
    ops = at.operator_pki(pki)
    conf = os.path.join(vt.make_tmpdir(os.path.join(workdir, "http-reload-")), "collector.conf")
    write_config(conf, "ops-admin")
    hport = vt.free_port()
    coll = collector_factory(db, {"--config": conf, "--http-listen": "127.0.0.1:%d" % hport,
                                  "--http-operator-ca": ops["ca"], "--http-rate-limit": "0"})
    admin = at.Api(hport, pki, cert=ops["admin"][0], key=ops["admin"][1])
    viewer = at.Api(hport, pki, cert=ops["viewer"][0], key=ops["viewer"][1])
    assert admin.ok("/api/v1/whoami") == {"principal": "cert:ops-admin", "role": "admin"}

    stop = threading.Event()
    seen = {"admin": [], "viewer": [], "errors": []}

    def ask(api, key):
        # One kept-alive connection: each request is authenticated again,
        # as fast as the collector answers.
        c = http.client.HTTPSConnection("localhost", hport, context=api.ctx, timeout=20)
        try:
            while not stop.is_set():
                try:
                    c.request("GET", "/api/v1/whoami")
                    r = c.getresponse()
                    seen[key].append((r.status, json.loads(r.read()).get("role")))
                except Exception as e:  # noqa: BLE001 - reported below
                    seen["errors"].append(repr(e))
                    c.close()
        finally:
            c.close()

    threads = [threading.Thread(target=ask, args=(admin, "admin")) for _ in range(2)]
    threads.append(threading.Thread(target=ask, args=(viewer, "viewer")))
    for t in threads:
        t.start()
    try:
        for i in range(RELOADS):
            # ops-admin stays an admin CN in both versions, last, so that
            # each check reads the whole list; the string that holds it is
            # replaced at every reload.
            write_config(conf, OTHER_CNS + ",ops-admin" if i % 2 == 0 else "ops-admin")
            coll.signal(signal.SIGHUP)
            time.sleep(0.15)
            assert coll.alive(), "the collector died during reload %d" % i
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not seen["errors"], seen["errors"][:5]
    assert len(seen["admin"]) >= RELOADS and len(seen["viewer"]) >= RELOADS // 4, \
        {k: len(v) for k, v in seen.items()}
    assert set(seen["admin"]) == {(200, "admin")}
    assert set(seen["viewer"]) == {(200, "viewer")}
    assert coll.log_text().count("http_admin_cns = ") >= RELOADS

    # The reload does take effect: without ops-admin in the list, it is a viewer.
    write_config(conf, OTHER_CNS)
    coll.signal(signal.SIGHUP)
    vt.wait_for(lambda: admin.ok("/api/v1/whoami")["role"] == "viewer", 10,
                what="ops-admin demoted by the reload")
