#!/usr/bin/python3
"""Measurements for bench/api.sh (not a test): latency of the two incident
queries through the real HTTPS API, and the status page's load time in
headless Chromium. Prints `key=value` lines on stdout.

  api_measure.py queries PORT TOKEN CA CONNINFO N
  api_measure.py page PORT TOKEN RUNS
"""

import http.client
import json
import random
import ssl
import subprocess
import sys
import tempfile
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
    elif sys.argv[1] == "page":
        page(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    else:
        raise SystemExit(__doc__)
