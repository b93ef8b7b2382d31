# SPDX-License-Identifier: Apache-2.0
"""Fixtures of Vigil's integration tests.

Session: a work directory, Python modules generated from proto/ with
protoc, a PKI made by scripts/dev-pki.sh and a throwaway PostgreSQL 15
cluster run by scripts/pg.sh. Per module or per test: a fresh database and
vigil-collector processes, stopped with SIGTERM at teardown, which must then
exit 0 with no sanitizer report in their logs.

Environment: VIGIL_BUILD_DIR (default SOURCE/build) holds bin/,
VIGIL_SOURCE_DIR (default ../..) the scripts and protos; VIGIL_IT_KEEP=1
keeps the whole work directory under /tmp (after a failure its logs are kept
anyway, and the path is printed); VIGIL_IT_FAULT_EVENTS scales the fault
test.

Parallel runs (pytest-xdist, what ctest does: see CMakeLists.txt):
`pytest -n 3 -m "not serial"`, then `pytest -m serial`. Each worker has
its own session: work directory, PKI and PostgreSQL cluster; free ports
are claimed across processes (vigiltest.free_port). A test that needs the
machine to itself (it measures time or memory, floods the loopback, uses a
machine-wide resource: addresses on lo, the process connector, containers,
podman images, caches outside the work directory) is marked
@pytest.mark.serial (or `pytestmark = pytest.mark.serial` for a module);
run by an xdist worker, it fails at setup.
"""

import itertools
import os
import re
import sys

import pytest

import vigiltest as vt

_counter = itertools.count(1)
_active_logs = []  # (label, path) of processes whose logs help explain a failure
_collectors = []  # collectors started and not yet torn down


def _worker():
    """The pytest-xdist worker id (gw0, gw1, ...), or None."""
    return os.environ.get("PYTEST_XDIST_WORKER")


def _xdist_controller(config):
    """True in the process that runs pytest-xdist's workers (it runs no
    test itself, so it needs no work directory)."""
    return (_worker() is None and not hasattr(config, "workerinput")
            and getattr(config.option, "dist", "no") != "no")


def pytest_configure(config):
    config.addinivalue_line("markers", "fault: the exactly-once test under crashes and "
                            "PostgreSQL restarts (select alone with -m fault or -k fault)")
    if _xdist_controller(config):
        return
    workdir = vt.make_tmpdir("vigil-it-%s" % (_worker() + "-" if _worker() else ""))
    config._vigil_workdir = workdir
    py = os.path.join(workdir, "py")
    os.makedirs(py)
    vt.generate_proto(py)


# Quick, basic tests first; the long fault test last.
_ORDER = ["test_config", "test_happy", "test_bad_input", "test_duplicate", "test_reload",
          "test_api", "test_agent", "test_agent_faults", "test_dead_letters", "test_drain",
          "test_faults"]


# Tests that use the machine's containers and the real agent (the fixtures
# of agent_fixtures.py): Podman's image store and the image tag they
# import, runc, the kernel's process connector, mounts. A parallel run
# gives them all to one worker, one after another (the xdist_group "host"),
# beside the tests of the collector alone; a test that uses these things
# without these fixtures says so with @pytest.mark.xdist_group("host").
HOST_GROUP = "host"
_HOST_FIXTURES = {"agent_factory", "agent_bin", "runc_factory", "rootfs", "podman",
                  "podman_image", "podman_api"}

# Work units of a parallel run (a module, or the host group), longest
# first so that no long one starts last. pytest-xdist hands each worker
# two units up front: the 4th (with the 1st, the longest) is a short one.
_XDIST_ORDER = [HOST_GROUP, "test_alerts", "test_faults", "test_config", "test_ingest_abuse",
                "test_api", "test_version_property", "test_http_sessions", "test_drain",
                "test_tls_policy", "test_rules", "test_bad_input", "test_vuln_collector"]


def _xdist_group(item):
    mark = item.get_closest_marker("xdist_group")
    if mark:
        return mark.args[0] if mark.args else mark.kwargs.get("name", "default")
    return None


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(session, config, items):
    if _worker() and config.getvalue("loadgroup"):
        # loadgroup: a module is one unit (its module-scoped fixtures are
        # made once), and so is the host group
        for item in items:
            if _xdist_group(item) is None:
                host = _HOST_FIXTURES.intersection(getattr(item, "fixturenames", ()))
                item.add_marker(pytest.mark.xdist_group(
                    HOST_GROUP if host else item.module.__name__.rsplit(".", 1)[-1]))

        def unit_rank(item):
            g = _xdist_group(item)
            return _XDIST_ORDER.index(g) if g in _XDIST_ORDER else len(_XDIST_ORDER)
        items.sort(key=unit_rank)  # stable: keeps the order inside a module
        return

    def rank(item):
        mod = item.module.__name__.rsplit(".", 1)[-1]
        return _ORDER.index(mod) if mod in _ORDER else len(_ORDER)
    items.sort(key=rank)  # stable: keeps the order inside a module


def pytest_runtest_setup(item):
    if _worker() and item.get_closest_marker("serial"):
        pytest.fail("%s is marked serial: it must not run beside other tests; run the "
                    "parallel pass with -m 'not serial' and this one in a pass of its own "
                    "(-m serial, without -n)" % item.nodeid, pytrace=False)


def pytest_unconfigure(config):
    workdir = getattr(config, "_vigil_workdir", None)
    if not workdir:
        return
    failed = getattr(config, "_vigil_failed", True)
    if os.environ.get("VIGIL_IT_KEEP"):
        print("\nintegration work directory kept: %s" % workdir)
    elif failed:
        # Keep the logs, not the (large) database files.
        vt.rmtree(os.path.join(workdir, "pg", "data"))
        print("\nintegration logs kept in %s" % workdir)
    else:
        vt.rmtree(workdir)


def pytest_sessionfinish(session, exitstatus):
    session.config._vigil_failed = bool(session.testsfailed) or exitstatus not in (0, 5)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        workdir = getattr(item.config, "_vigil_workdir", None)
        if workdir and _worker():
            # a worker's own output is not shown: say where its logs are kept
            rep.sections.append(("integration work directory (%s)" % _worker(), workdir))
        for label, path in list(_active_logs):
            try:
                with open(path, errors="replace") as f:
                    text = f.read()
            except OSError:
                continue
            rep.sections.append(("%s (%s)" % (label, path), vt.log_excerpt(text)))


# test_images.py needs the Debian packages, built after the suites:
# scripts/test.sh runs it in a stage of its own, with VIGIL_IMAGES_TEST=1.
collect_ignore = [] if os.environ.get("VIGIL_IMAGES_TEST") == "1" else ["test_images.py"]


@pytest.fixture(scope="session")
def workdir(pytestconfig):
    return pytestconfig._vigil_workdir


def _binary(name):
    path = os.path.join(vt.BUILD_DIR, "bin", name)
    if not os.access(path, os.X_OK):
        pytest.fail("%s not built (VIGIL_BUILD_DIR=%s)" % (path, vt.BUILD_DIR))
    return path


@pytest.fixture(scope="session")
def collector_bin():
    return _binary("vigil-collector")


@pytest.fixture(scope="session")
def loadgen_bin():
    return _binary("vigil-loadgen")


@pytest.fixture(scope="session")
def pki(workdir):
    p = vt.Pki(workdir)
    p.make()
    return p


@pytest.fixture(scope="session")
def pg(workdir):
    p = vt.Postgres(workdir, vt.free_port())
    p.start()
    _active_logs.append(("postgresql log", os.path.join(p.dir, "log")))
    yield p
    p.stop()


def _db_name(node):
    base = re.sub(r"[^a-z0-9]+", "_", node.name.lower()).strip("_")[:40]
    return "vt%d_%s" % (next(_counter), base)


@pytest.fixture
def db(pg, request):
    """A fresh, empty database for one test."""
    d = pg.create_db(_db_name(request.node))
    yield d
    pg.drop_db(d.name)


@pytest.fixture(scope="module")
def module_db(pg, request):
    """A fresh, empty database shared by the tests of one module."""
    d = pg.create_db(_db_name(request.node))
    yield d
    pg.drop_db(d.name)


class CollectorFactory:
    """Starts vigil-collector processes and stops them at teardown."""

    def __init__(self, binary, pki, workdir, label):
        self.binary = binary
        self.pki = pki
        self.workdir = workdir
        self.label = label
        self.started = []

    def args(self, db, port, flags):
        opts = {
            "--listen": "127.0.0.1:%d" % port,
            "--tls-cert": self.pki.collector_crt,
            "--tls-key": self.pki.collector_key,
            "--agent-ca": self.pki.ca_crt,
            "--db": db.conninfo,
            "--workers": "2",
            "--db-writers": "2",
            "--log-level": "info",
        }
        opts.update(flags or {})
        out = []
        for k, v in opts.items():
            if v is None:
                continue
            out += [k, str(v)]
        return out

    def __call__(self, db, flags=None, port=None, start=True, nofile=None):
        """A collector for DB with FLAGS ({'--flag': value}) on PORT (a free
        one if not given), started unless START is false, with an open-file
        limit of NOFILE if given."""
        port = port or vt.free_port()
        n = next(_counter)
        log = os.path.join(self.workdir, "logs", "%s-collector-%d.log" % (self.label, n))
        os.makedirs(os.path.dirname(log), exist_ok=True)
        c = vt.Collector(self.binary, log, self.args(db, port, flags), port)
        c.nofile = nofile
        self.started.append(c)
        _collectors.append(c)
        _active_logs.append(("collector log", log))
        if start:
            c.start()
        return c

    def finish(self, session):
        problems = []
        for c in self.started:
            if c.alive():
                rc = c.terminate(timeout=60)
                if rc != 0:
                    problems.append("collector %s exited %s after SIGTERM (log %s)"
                                    % (c.address, rc, c.log_path))
            elif not c.reported and c.unexpected_exit() is not None:
                problems.append("collector %s had exited with %s (log %s)"
                                % (c.address, c.proc.returncode, c.log_path))
            reports = vt.sanitizer_reports(c.log_text())
            if reports and not c.reported:
                problems.append("sanitizer reports in %s:\n%s"
                                % (c.log_path, "\n".join(reports[:20])))
            _collectors.remove(c)
            try:
                _active_logs.remove(("collector log", c.log_path))
            except ValueError:
                pass
        if problems and session.shouldstop:
            # pytest -x is ending the session after a failure: an exception
            # here would hide that failure's report.
            sys.stderr.write("\n".join(problems) + "\n")
            return
        assert not problems, "\n".join(problems)


@pytest.fixture(autouse=True)
def collectors_healthy():
    """After each test: no running collector crashed or reported a
    sanitizer error during it."""
    yield
    problems = []
    for c in list(_collectors):
        if c.reported:
            continue
        rc = c.unexpected_exit()
        reports = vt.sanitizer_reports(c.log_text())
        if rc is not None or reports:
            c.reported = True
            problems.append("collector %s %s (log %s)\n%s" % (
                c.address, "exited with %d" % rc if rc is not None else "is running",
                c.log_path, "\n".join(reports[:20])))
    assert not problems, "\n".join(problems)


@pytest.fixture
def collector_factory(collector_bin, pki, workdir, request):
    f = CollectorFactory(collector_bin, pki, workdir,
                         re.sub(r"[^A-Za-z0-9]+", "_", request.node.name)[:60])
    yield f
    f.finish(request.session)


@pytest.fixture(scope="module")
def module_collector_factory(collector_bin, pki, workdir, request):
    f = CollectorFactory(collector_bin, pki, workdir,
                         re.sub(r"[^A-Za-z0-9]+", "_", request.node.name)[:60])
    yield f
    f.finish(request.session)


@pytest.fixture
def loadgen_factory(loadgen_bin, pki, workdir, request):
    """Start vigil-loadgen against a collector: f(collector, **flags)."""
    started = []

    def start(collector, **opts):
        n = next(_counter)
        log = os.path.join(workdir, "logs", "%s-loadgen-%d.log"
                           % (re.sub(r"[^A-Za-z0-9]+", "_", request.node.name)[:60], n))
        os.makedirs(os.path.dirname(log), exist_ok=True)
        opts.setdefault("report_interval", 5)
        lg = vt.Loadgen(loadgen_bin, pki, collector, log, **opts)
        started.append(lg)
        _active_logs.append(("loadgen stderr", log))
        return lg

    yield start
    problems = []
    for lg in started:
        lg.stop()
        reports = vt.sanitizer_reports(lg.stderr_text())
        if reports:
            problems.append("sanitizer reports in %s:\n%s" % (lg.log_path, "\n".join(reports)))
        try:
            _active_logs.remove(("loadgen stderr", lg.log_path))
        except ValueError:
            pass
    assert not problems, "\n".join(problems)


@pytest.fixture
def agent(pki):
    """Open a RawAgent: agent(port, name) with the certificate of agent NAME
    (issued on first use), or agent(port, cert=..., key=...)."""
    opened = []

    def connect(port, name=None, cert=None, key=None, ca=None, timeout=10.0):
        if name:
            cert, key = pki.agent(name)
        a = vt.RawAgent(port, vt.client_context(pki, cert, key, ca), timeout)
        opened.append(a)
        return a.connect()

    yield connect
    for a in opened:
        a.close()
