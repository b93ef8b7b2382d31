# SPDX-License-Identifier: Apache-2.0
"""The collector's configuration surface: the shipped example file parses,
flags win over the file, and bad values are refused with a clear error."""

import os
import subprocess

import vigiltest as vt


def collector(*args):
    exe = os.path.join(vt.BUILD_DIR, "bin", "vigil-collector")
    return subprocess.run([exe] + list(args), capture_output=True, text=True, timeout=30)


def settings_of(text):
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(" = ")
        out[k] = v
    return out


def test_example_config_parses_and_flags_win():
    conf = os.path.join(vt.SOURCE_DIR, "deploy", "collector.conf")
    r = collector("-c", conf, "--db-writers", "3", "--print-config")
    assert r.returncode == 0, r.stderr
    s = settings_of(r.stdout)
    assert s["listen"] == '"0.0.0.0:7443"'
    assert s["db_writers"] == "3"  # the flag, not the file's 2
    assert s["http_listen"] == '"0.0.0.0:8443"'  # the file's, not the default
    assert s["handshake_timeout"] == "10000ms"  # a default


def test_bad_values_are_refused(tmp_path):
    r = collector("--max-frame-bytes", "lots", "--print-config")
    assert r.returncode == 2
    assert "max_frame_bytes" in r.stderr and "not a valid size" in r.stderr
    conf = tmp_path / "c.conf"
    conf.write_text("listen = 127.0.0.1:1\nno_such_setting = 1\n")
    r = collector("-c", str(conf), "--print-config")
    assert r.returncode == 2
    assert "c.conf:2" in r.stderr and "no_such_setting" in r.stderr
    r = collector("--tls-cert", "", "--listen", "127.0.0.1:1")
    assert r.returncode == 2 and "tls_cert" in r.stderr
