#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Measurements for bench/api.sh (not a test): latency of the two incident
queries and of the newest-first listings through the real HTTPS API,
export throughput, small reads while exports run, and the status page's
load time in headless Chromium. Prints `key=value` lines on stdout.

  api_measure.py queries PORT TOKEN CA CONNINFO N
  api_measure.py listings PORT TOKEN CA N
  api_measure.py exports PORT TOKEN CA ROWS
  api_measure.py page PORT TOKEN RUNS
"""

import http.client
import json
import random
import ssl
import subprocess
import sys
import tempfile
import threading
import time


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def psql(conninfo, sql):
    r = subprocess.run(["psql", "-X", "-At", "-d", conninfo, "-c", sql],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True)
    return [ln for ln in r.stdout.splitlines() if ln]


def timed_gets(port, token, ca, paths):
    ctx = ssl.create_default_context(cafile=ca)
    c = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=60)
    hdr = {"Authorization": "Bearer " + token}
    ms, rows = [], []
    for p in paths:
        t = time.perf_counter()
        c.request("GET", p, headers=hdr)
        r = c.getresponse()
        body = r.read()
        ms.append((time.perf_counter() - t) * 1000)
        if r.status != 200:
            raise SystemExit("GET %s -> %d %s" % (p, r.status, body[:300]))
        d = json.loads(body)
        rows.append(d.get("count", 0))
    c.close()
    return ms, rows


def queries(port, token, ca, conninfo, n):
    rnd = random.Random(7)
    cids = psql(conninfo, "SELECT id FROM containers WHERE state = 'running' "
                          "ORDER BY random() LIMIT %d" % n)
    images = psql(conninfo, "SELECT DISTINCT image FROM containers")
    # warm-up (connection, token cache, plans)
    timed_gets(port, token, ca, ["/api/v1/events?container=%s&limit=1000" % cids[0]] * 3)
    ms, rows = timed_gets(port, token, ca,
                          ["/api/v1/events?container=%s&since=24h&limit=1000" % c for c in cids])
    print("# container 24h: %d queries, rows p50 %d, latency p50 %.1f ms p95 %.1f ms max %.1f ms"
          % (len(ms), pct(rows, 50), pct(ms, 50), pct(ms, 95), max(ms)), file=sys.stderr)
    print("q_container_24h_p95_ms=%.1f" % pct(ms, 95))
    paths = ["/api/v1/images?image=%s&since=7d" % rnd.choice(images) for _ in range(n)]
    ms, rows = timed_gets(port, token, ca, paths)
    print("# image 7d: %d queries, nodes p50 %d, latency p50 %.1f ms p95 %.1f ms max %.1f ms"
          % (len(ms), pct(rows, 50), pct(ms, 50), pct(ms, 95), max(ms)), file=sys.stderr)
    print("q_image_7d_p95_ms=%.1f" % pct(ms, 95))


def summary(what, ms, rows=None):
    print("# %s: %d queries%s, latency p50 %.1f ms p99 %.1f ms max %.1f ms"
          % (what, len(ms), ", rows p50 %d" % pct(rows, 50) if rows else "", pct(ms, 50),
             pct(ms, 99), max(ms)), file=sys.stderr)
    return pct(ms, 99)


def keyset_pages(port, token, ca, n, limit=100):
    """Follow next_cursor from the newest page for n pages (the default
    window, no filter): the latency of each page."""
    ctx = ssl.create_default_context(cafile=ca)
    c = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=120)
    hdr = {"Authorization": "Bearer " + token}
    ms, cursor = [], None
    while len(ms) < n:
        p = "/api/v1/events?limit=%d" % limit
        if cursor:
            p += "&cursor=" + cursor
        t = time.perf_counter()
        c.request("GET", p, headers=hdr)
        r = c.getresponse()
        body = r.read()
        ms.append((time.perf_counter() - t) * 1000)
        if r.status != 200:
            raise SystemExit("GET %s -> %d %s" % (p, r.status, body[:300]))
        cursor = json.loads(body)["next_cursor"]
        if not cursor:
            cursor = None
    c.close()
    return ms


def listings(port, token, ca, n):
    """The status page's newest-first listings over the default window (the
    last 24 h): no filter, by kind, by severity, keyset pages, and argv=
    text search for a rare command line (also over 7 days, a few)."""
    rnd = random.Random(11)
    timed_gets(port, token, ca, ["/api/v1/events?limit=100"] * 3)  # warm-up
    ms, rows = timed_gets(port, token, ca, ["/api/v1/events?limit=100"] * n)
    print("q_latest_p99_ms=%.1f" % summary("latest 100, no filter", ms, rows))
    ms, rows = timed_gets(port, token, ca, ["/api/v1/events?limit=100&kind=%s" % k for k in (
        "process_exec", "container_started", "finding", "process_exec,finding")] * (n // 4))
    print("q_kind_p99_ms=%.1f" % summary("latest 100 by kind", ms, rows))
    ms, rows = timed_gets(port, token, ca, ["/api/v1/events?limit=100&severity=%s" % v
                                            for v in ("high", "medium", "info")] * (n // 3))
    print("q_severity_p99_ms=%.1f" % summary("latest 100 by severity", ms, rows))
    ms = keyset_pages(port, token, ca, n)
    print("q_keyset_p99_ms=%.1f" % summary("keyset pages of 100, newest first", ms))
    # bench/api.sh's argv is [/usr/bin/prog-(g%40), --run, g%977]: one
    # program with one number is one event in 39,080
    terms = ["prog-%d%%20--run%%20%d" % (rnd.randrange(40), rnd.randrange(100, 977))
             for _ in range(n)]
    ms, rows = timed_gets(port, token, ca, ["/api/v1/events?limit=100&argv=" + t
                                            for t in terms])
    print("q_argv_p99_ms=%.1f" % summary("argv= rare command line, 24 h", ms, rows))
    ms, rows = timed_gets(port, token, ca, ["/api/v1/events?limit=100&since=7d&argv=" + t
                                            for t in terms[:5]])
    print("q_argv_7d_p50_ms=%.1f" % pct(ms, 50))
    summary("argv= rare command line, 7 days", ms, rows)


def export_cmd(port, token, ca, fmt, rows):
    """curl streaming one export of up to rows events of the last 7 days."""
    return ["curl", "-sS", "--fail", "--cacert", ca, "-H", "Authorization: Bearer " + token,
            "https://localhost:%d/api/v1/events?since=7d&format=%s&limit=%d"
            % (port, fmt, rows)]


def export(port, token, ca, fmt, rows):
    """Stream one export (curl, so that the client costs little); return
    (lines, seconds)."""
    t = time.perf_counter()
    p = subprocess.Popen(export_cmd(port, token, ca, fmt, rows), stdout=subprocess.PIPE)
    got = 0
    while True:
        b = p.stdout.read(1 << 20)
        if not b:
            break
        got += b.count(b"\n")
    if p.wait() != 0:
        raise SystemExit("export %s failed" % fmt)
    return got, time.perf_counter() - t


def exports(port, token, ca, rows):
    """Export throughput (NDJSON and CSV, one at a time; the figure is the
    slower), then GET /api/v1/agents while 8 exports stream (4 NDJSON, 4
    CSV, each started again as soon as it ends)."""
    rates = {}
    for fmt in ("ndjson", "csv"):
        n, s = export(port, token, ca, fmt, rows)
        rates[fmt] = n / s
        print("# export %s: %d lines in %.2f s, %.0f rows/s" % (fmt, n, s, n / s),
              file=sys.stderr)
    print("export_rows_per_s=%.0f" % min(rates.values()))
    ms, _ = timed_gets(port, token, ca, ["/api/v1/agents"] * 20)
    summary("GET /api/v1/agents, idle", ms)
    stop = threading.Event()

    def stream(fmt):
        while not stop.is_set():
            p = subprocess.Popen(export_cmd(port, token, ca, fmt, rows),
                                 stdout=subprocess.DEVNULL)
            while p.poll() is None:
                if stop.wait(0.1):
                    p.terminate()
            p.wait()

    ts = [threading.Thread(target=stream, args=(("ndjson", "csv")[i % 2],)) for i in range(8)]
    for t in ts:
        t.start()
    time.sleep(2)  # every export under way
    ms = []
    for _ in range(100):
        m, _ = timed_gets(port, token, ca, ["/api/v1/agents"])
        ms += m
        time.sleep(0.05)
    stop.set()
    for t in ts:
        t.join()
    print("small_read_p99_under_load_ms=%.1f" %
          summary("GET /api/v1/agents while 8 exports stream", ms))


def page(port, token, runs):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    prof = tempfile.mkdtemp(prefix="vigil-bench-chromium-")
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
              "--window-size=1400,1000", "--user-data-dir=" + prof):
        o.add_argument(a)
    o.set_capability("acceptInsecureCerts", True)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
    url = "https://localhost:%d/" % port
    try:
        d.get(url)  # the sign-in page: post the token once; the session cookie stays
        d.find_element(By.ID, "token").send_keys(token)
        d.find_element(By.ID, "signin-form").submit()
        WebDriverWait(d, 60, poll_frequency=0.05).until(
            lambda x: x.execute_script("return document.body.dataset.loaded") == "1")
        times, agents = [], 0
        for _ in range(runs):
            d.get(url)
            WebDriverWait(d, 60, poll_frequency=0.05).until(
                lambda x: x.execute_script("return document.body.dataset.loaded") == "1")
            # from navigation start to every panel rendered (set by app.js)
            times.append(float(d.execute_script("return document.body.dataset.loadedMs")))
            agents = d.execute_script(
                "return document.querySelectorAll('#agents tbody tr').length")
        print("# page: %d loads with %d agents rendered: %s ms" %
              (runs, agents, ", ".join("%.0f" % t for t in times)), file=sys.stderr)
        print("page_load_ms=%.0f" % sorted(times)[len(times) // 2])
        print("page_agents=%d" % agents)
    finally:
        d.quit()
        subprocess.run(["rm", "-rf", prof])


if __name__ == "__main__":
    if sys.argv[1] == "queries":
        queries(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
    elif sys.argv[1] == "listings":
        listings(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif sys.argv[1] == "exports":
        exports(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif sys.argv[1] == "page":
        page(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    else:
        raise SystemExit(__doc__)
