// SPDX-License-Identifier: Apache-2.0
/*
 * Vigil status page: renders what the query API returns. The collector
 * serves this page only to a signed-in browser (the session cookie, which
 * scripts cannot read, or an operator certificate); the same credential
 * goes along with every API request (same origin). An API request refused
 * with 401 (the session ended: signed out, expired, idle, or its token
 * revoked) reloads the page, which then is the sign-in page. Every string that comes from the API is put into the
 * page with textContent (never as HTML): container names, labels, command
 * lines and host names are chosen by whoever controls a container or a node.
 */
"use strict";

(function () {
  const REFRESH_MS = 10000;
  let timer = null;
  let chart = null;
  let search = "";
  let selected = null; // container shown in the timeline: {id, name}

  const $ = (id) => document.getElementById(id);

  // Control characters, bidirectional controls (RLO, isolates, marks) and
  // invisible characters (zero-width, fillers, BOM) from a container would
  // reorder or hide what is shown next to them: show them as their code
  // point instead. Each string is also shown in an element of its own with
  // dir=auto (unicode-bidi: isolate, app.css), so that right-to-left text
  // in it cannot reorder what is around it.
  const HIDDEN = new RegExp("[\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f\\u00ad\\u061c" +
    "\\u115f\\u1160\\u180e\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u206f\\u3164\\ufeff" +
    "\\ufff9-\\ufffb]", "g");
  function visible(s) {
    return String(s).replace(HIDDEN, (c) =>
      "[U+" + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0") + "]");
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) {
      e.textContent = visible(text);
      e.dir = "auto";
    }
    if (cls) e.className = cls;
    return e;
  }

  function fmtTime(s) {
    if (!s) return "";
    const d = new Date(s);
    return isNaN(d) ? String(s) : d.toISOString().replace("T", " ").slice(0, 19);
  }

  function ago(s) {
    if (!s) return "never";
    const secs = Math.max(0, (Date.now() - new Date(s).getTime()) / 1000);
    if (secs < 90) return Math.round(secs) + " s ago";
    if (secs < 5400) return Math.round(secs / 60) + " min ago";
    if (secs < 172800) return Math.round(secs / 3600) + " h ago";
    return Math.round(secs / 86400) + " d ago";
  }

  class AuthError extends Error {}

  // The session is over: the reload shows the sign-in page.
  function signedOut() {
    if (timer) clearInterval(timer);
    timer = null;
    location.reload();
  }

  async function api(path, params) {
    const q = params ? "?" + new URLSearchParams(params).toString() : "";
    const r = await fetch(path + q, { cache: "no-store", credentials: "same-origin" });
    if (r.status === 401) throw new AuthError("signed out");
    if (!r.ok) {
      let msg = r.status + " " + r.statusText;
      try { msg = (await r.json()).message || msg; } catch (e) { /* not JSON */ }
      throw new Error(msg);
    }
    return r;
  }

  function failed(e) {
    if (e instanceof AuthError) signedOut();
    else $("updated").textContent = visible(e.message);
  }

  async function getJSON(path, params) {
    return (await api(path, params)).json();
  }

  function fill(tbody, rows, cells, onClick) {
    const frag = document.createDocumentFragment();
    for (const row of rows) {
      const tr = el("tr");
      for (const c of cells) {
        const v = c(row);
        if (v instanceof Node) {
          const td = el("td");
          td.appendChild(v);
          tr.appendChild(td);
        } else {
          tr.appendChild(el("td", v));
        }
      }
      if (onClick) {
        tr.className = "click";
        tr.addEventListener("click", () => onClick(row));
      }
      frag.appendChild(tr);
    }
    tbody.replaceChildren(frag);
  }

  function sevCell(s) {
    return el("span", s, "sev-" + String(s).replace(/[^a-z]/g, ""));
  }

  function what(e) {
    if (e.kind === "process_exec") return (e.argv && e.argv.length ? e.argv.join(" ") : e.exe) || "";
    if (e.kind === "finding") return (e.rule || "") + ": " + (e.summary || "");
    if (e.details && e.details.container && e.details.container.name)
      return e.details.container.name;
    return e.container_id || "";
  }

  function labels(obj) {
    const span = el("span");
    for (const [k, v] of Object.entries(obj || {})) span.appendChild(el("span", k + "=" + v, "pill"));
    return span;
  }

  /* ---- rendering ---- */

  function renderStats(s, agents) {
    const online = agents.filter((a) => a.online).length;
    $("t-online").textContent = online;
    $("t-offline").textContent = agents.length - online;
    $("t-rate").textContent = Math.round(s.events_per_s);
    $("t-queue").textContent = s.queue_jobs + " jobs / " + Math.round(s.queue_bytes / 1024) + " KiB";
    $("t-running").textContent = s.containers_running;
    const h = s.history || [];
    $("chart-empty").hidden = h.length > 0;
    const data = [
      h.map((p) => new Date(p.t).getTime() / 1000),
      h.map((p) => p.events_per_s),
      h.map((p) => p.agents_connected),
    ];
    if (typeof uPlot === "undefined") return;
    const width = Math.max(300, $("chart").clientWidth || 800);
    if (!chart) {
      chart = new uPlot({
        width: width,
        height: 240,
        series: [
          {},
          { label: "events/s", stroke: "#5aa0e0", width: 2, scale: "rate" },
          { label: "agents online", stroke: "#4caf7a", width: 2, scale: "agents" },
        ],
        axes: [
          { stroke: "#8a96a3", grid: { stroke: "#2a3440" } },
          { scale: "rate", stroke: "#5aa0e0", grid: { stroke: "#2a3440" } },
          { scale: "agents", side: 1, stroke: "#4caf7a", grid: { show: false } },
        ],
        scales: { x: { time: true }, rate: { range: (u, lo, hi) => [0, Math.max(1, hi)] },
                  agents: { range: (u, lo, hi) => [0, Math.max(1, hi)] } },
      }, data, $("chart"));
    } else {
      chart.setData(data);
    }
  }

  function renderAgents(agents) {
    fill($("agents").tBodies[0], agents, [
      (a) => a.name,
      (a) => a.hostname,
      (a) => el("span", a.online ? "online" : "offline", a.online ? "ok" : "warn"),
      (a) => ago(a.last_seen),
      (a) => a.agent_version,
      (a) => a.containers_running,
    ]);
  }

  function renderEvents(id, rows) {
    fill($(id).tBodies[0], rows,
      [(e) => fmtTime(e.ts), (e) => e.agent, (e) => sevCell(e.severity), (e) => e.kind, what]);
  }

  function showTimeline(id, name) {
    selected = { id: id, name: name || id };
    loadTimeline().then(() => $("timeline-card").scrollIntoView()).catch(failed);
  }

  // The open findings: counts by severity (of all of them), the checks
  // that could not be made, and the newest with their remediation.
  function renderFindings(d) {
    for (const s of ["critical", "high", "medium", "low", "info"])
      $("f-" + s).textContent = (d.by_severity && d.by_severity[s]) || 0;
    $("f-unknown").textContent = d.unknown
      ? d.unknown + " checks not judged on " + d.unknown_containers + " running containers (a source could not tell)"
      : "every check judged";
    fill($("findings").tBodies[0], d.findings, [
      (f) => fmtTime(f.last_seen),
      (f) => sevCell(f.severity),
      (f) => {
        const span = el("span", f.title || f.rule);
        if (f.key) { span.appendChild(el("span", " ")); span.appendChild(el("code", f.key)); }
        return span;
      },
      (f) => f.container_name || f.container_id.slice(0, 12),
      (f) => f.agent,
      (f) => f.summary,
      (f) => f.remediation,
    ], (f) => showTimeline(f.container_id, f.container_name));
    for (const tr of $("findings").tBodies[0].rows) tr.cells[6].className = "remedy";
  }

  // The worst images by running containers x severity (/api/v1/vulnerabilities).
  function renderVulns(d) {
    const im = d.images || {};
    $("vuln-summary").textContent = visible((im.vulnerable || 0) + " of " + (im.total || 0) +
      " images with known vulnerabilities; " + (d.advisories || 0) + " advisories");
    fill($("vuln-images").tBodies[0], d.top_images || [], [
      (i) => el("code", (i.names && i.names.length ? i.names[0] : i.image_id)),
      (i) => sevCell(i.max_severity),
      (i) => i.containers_running,
      (i) => i.counts[5],
      (i) => i.counts[4],
      (i) => i.counts[3],
      (i) => i.counts[2],
    ]);
  }

  async function loadVulns() {
    renderVulns(await getJSON("/api/v1/vulnerabilities", { limit: 10 }));
  }

  function renderContainers(rows) {
    fill($("containers").tBodies[0], rows, [
      (c) => c.name || c.id.slice(0, 12),
      (c) => c.agent,
      (c) => c.image,
      (c) => c.state,
      (c) => (c.privileged ? el("span", "yes", "bad") : "no"),
      (c) => labels(c.labels),
      (c) => ago(c.last_seen),
      // open findings, coloured by the worst of them
      (c) => (c.findings_open
        ? el("span", c.findings_open, "sev-" + String(c.findings_severity).replace(/[^a-z]/g, ""))
        : "0"),
    ], (c) => { selected = { id: c.id, name: c.name || c.id }; loadTimeline().catch(failed); });
  }

  async function loadTimeline() {
    if (!selected) return;
    $("timeline-card").hidden = false;
    $("timeline-name").textContent = visible(selected.name);
    $("timeline-id").textContent = selected.id;
    const d = await getJSON("/api/v1/events", { container: selected.id, limit: 200 });
    const frag = document.createDocumentFragment();
    for (const e of d.events) {
      const li = el("li");
      li.appendChild(el("span", fmtTime(e.ts) + " ", "muted"));
      li.appendChild(sevCell(e.severity));
      li.appendChild(el("span", " " + e.kind + " "));
      li.appendChild(el("code", what(e)));
      frag.appendChild(li);
    }
    $("timeline").replaceChildren(frag);
  }

  async function loadContainers() {
    const p = { limit: 200 };
    if (search) p.q = search;
    renderContainers((await getJSON("/api/v1/containers", p)).containers);
  }

  async function refresh() {
    try {
      const [stats, agents, high, findings] = await Promise.all([
        getJSON("/api/v1/stats"),
        getJSON("/api/v1/agents"),
        getJSON("/api/v1/events", { severity: "high", limit: 20 }),
        getJSON("/api/v1/findings", { state: "open", limit: 20 }),
      ]);
      renderStats(stats, agents.agents);
      renderAgents(agents.agents);
      renderEvents("high", high.events);
      renderFindings(findings);
      await loadVulns();
      await loadContainers();
      if (selected) await loadTimeline();
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
      if (!document.body.dataset.loaded) // time from navigation start to everything rendered
        document.body.dataset.loadedMs = String(Math.round(performance.now()));
      document.body.dataset.loaded = "1";
    } catch (e) {
      if (e instanceof AuthError) return signedOut();
      $("updated").textContent = visible("refresh failed: " + e.message);
    }
  }

  /* ---- who, and signing out ---- */

  async function start() {
    try {
      const who = await getJSON("/api/v1/whoami");
      $("who").textContent = visible(who.principal + " (" + who.role + ")");
      // an operator certificate stays signed in: only a session can end
      $("signout").hidden = !who.principal.startsWith("token:");
    } catch (e) {
      if (e instanceof AuthError) return signedOut();
      $("updated").textContent = visible("failed: " + e.message);
      return;
    }
    refresh();
    timer = setInterval(refresh, REFRESH_MS);
  }

  // Sign-out ends the session on the collector (the cookie's id is then
  // refused everywhere) and clears the cookie. If the collector could not
  // end it, the session is still in force: say so and stay.
  async function signOut() {
    let r = null;
    try {
      r = await fetch("/api/v1/session", { method: "DELETE", credentials: "same-origin" });
    } catch (e) {
      r = null;
    }
    if (r && r.ok) return signedOut();
    $("updated").textContent = visible("sign-out failed (" + (r ? r.status : "no answer") +
                                       "); the session is still open, try again");
  }

  async function exportCsv() {
    const p = { format: "csv", limit: 100000 };
    if (search) p.q = search;
    const blob = await (await api("/api/v1/containers", p)).blob();
    const a = el("a");
    a.href = URL.createObjectURL(blob);
    a.download = "containers.csv";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signout").addEventListener("click", () => { signOut(); });
    $("search-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      search = $("search").value.trim();
      loadContainers().catch(failed);
    });
    $("export").addEventListener("click", () => exportCsv().catch(failed));
    start();
  });
})();
