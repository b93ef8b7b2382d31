# SPDX-License-Identifier: Apache-2.0
"""Property test of the dpkg version comparison (collector/vuln/version.c)
against dpkg itself: thousands of random pairs of realistic Debian and
Ubuntu versions (epochs, ~, +, ., -, letters, digits, leading zeros), most
of them near each other, compared by vigil-vercmp (built with the unit
tests) and by `dpkg --compare-versions`, which must agree on every pair.

VIGIL_VERCMP_PAIRS sets the number of pairs (default 3,500) and
VIGIL_VERCMP_SEED the seed (default fixed, so a failure repeats).
"""

import os
import random
import re
import shutil
import subprocess

import pytest

import vigiltest as vt

PAIRS = int(os.environ.get("VIGIL_VERCMP_PAIRS", "3500"))
SEED = int(os.environ.get("VIGIL_VERCMP_SEED", "20240613"))
JOBS = 4  # dpkg processes at once: dpkg is the slow side

LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
WORDS = ["dfsg", "ds", "really", "git", "svn", "rc", "beta", "alpha", "pre", "b", "nmu",
         "deb", "u", "ubuntu", "build", "bpo", "esm", "z", "a", "Z"]


def _number(rng):
    n = rng.choice([0, 0, 1, 1, 2, 3, 5, 9, 10, 11, 20, 99, 100, 2023, 20240101,
                    rng.randrange(1000)])
    s = str(n)
    if rng.random() < 0.12:  # leading zeros
        s = "0" * rng.randint(1, 3) + s
    return s


def _word(rng):
    if rng.random() < 0.7:
        return rng.choice(WORDS)
    return "".join(rng.choice(LETTERS) for _ in range(rng.randint(1, 3)))


def _part(rng, first, seps):
    """A run of components: digits and words joined by the separators."""
    out = [_number(rng)] if first else []
    for _ in range(rng.randint(0 if first else 1, 4)):
        sep = rng.choice(seps)
        piece = _number(rng) if rng.random() < 0.6 else _word(rng)
        if rng.random() < 0.2:
            piece += _number(rng)
        out.append(sep + piece)
    if rng.random() < 0.05:
        out.append(rng.choice(seps))  # a trailing separator: "1.0." or "1.0~"
    return "".join(out)


def gen_version(rng):
    epoch = ""
    if rng.random() < 0.25:
        epoch = rng.choice(["0", "1", "2", "3", "01", "10"]) + ":"
    has_rev = rng.random() < 0.7
    up_seps = [".", ".", ".", "+", "~", "~"] + (["-"] if has_rev else []) + \
        ([":"] if epoch and rng.random() < 0.1 else [])
    upstream = _part(rng, True, up_seps)
    rev = ""
    if has_rev:
        rev = "-" + (_part(rng, True, [".", "+", "~"]) if rng.random() < 0.85
                     else _word(rng) + _number(rng))
    return epoch + upstream + rev


def mutate(rng, v):
    """A version near v: one small edit of the kinds that decide order."""
    kind = rng.randrange(9)
    if kind == 0:  # bump or change one digit
        idx = [i for i, c in enumerate(v) if c.isdigit()]
        i = rng.choice(idx)
        return v[:i] + rng.choice("0123456789") + v[i + 1:]
    if kind == 1:
        return v + rng.choice(["~", "~~", "~rc1", "~0", "+b1", "+", ".", "a", ".0", "0"])
    if kind == 2:  # add, drop or change the epoch
        if ":" not in v:
            return rng.choice(["0:", "1:"]) + v
        rest = v.split(":", 1)[1]
        if rng.random() < 0.4 and ":" not in rest:
            return rest
        return rng.choice(["0", "1", "00", "2"]) + ":" + rest
    if kind == 3:  # a leading zero before some digit run
        idx = [i for i, c in enumerate(v) if c.isdigit() and (i == 0 or not v[i - 1].isdigit())]
        i = rng.choice(idx)
        return v[:i] + "0" + v[i:]
    if kind == 4:  # a revision of its own
        base = v.rsplit("-", 1)[0] if "-" in v else v
        if "-" in base and rng.random() < 0.5:
            return v
        return base + "-" + _part(rng, True, [".", "+", "~"])
    if kind == 5:  # swap a separator
        idx = [i for i, c in enumerate(v) if c in ".+~"]
        if not idx:
            return v + "~"
        i = rng.choice(idx)
        return v[:i] + rng.choice(".+~") + v[i + 1:]
    if kind == 6:  # a letter in place of a character after a digit
        idx = [i for i in range(1, len(v)) if v[i - 1].isdigit() and v[i] not in ":-"]
        if not idx:
            return v + "a"
        i = rng.choice(idx)
        return v[:i] + rng.choice(LETTERS) + v[i + 1:]
    if kind == 7:
        return v
    return gen_version(rng)


VALID = re.compile(r"^(?:[0-9]+:)?([0-9][A-Za-z0-9.+~:-]*?)(?:-[A-Za-z0-9.+~]+)?$")


def valid(v):
    """A version that parses: an epoch, an upstream part starting with a
    digit (':' only after an epoch, '-' only before a revision)."""
    m = VALID.match(v)
    if not m or len(v) > 200:
        return False
    up = m.group(1)
    has_epoch = m.start(1) > 0
    has_rev = m.end(1) < len(v)
    return (":" not in up or has_epoch) and ("-" not in up or has_rev)


def gen_pairs(n, seed):
    rng = random.Random(seed)
    pairs = []
    while len(pairs) < n:
        a = gen_version(rng)
        b = mutate(rng, a) if rng.random() < 0.75 else gen_version(rng)
        if valid(a) and valid(b):
            pairs.append((a, b))
    return pairs


DPKG_LOOP = r"""
while read -r a b; do
  if dpkg --compare-versions "$a" lt "$b" 2>/dev/null; then echo '<'
  elif dpkg --compare-versions "$a" gt "$b" 2>/dev/null; then echo '>'
  elif dpkg --compare-versions "$a" eq "$b" 2>/dev/null; then echo '='
  else echo '!'; fi
done
"""


def dpkg_answers(pairs):
    """dpkg's answer for each pair: JOBS bash loops, one dpkg call or two
    per pair."""
    chunks = [pairs[i::JOBS] for i in range(JOBS)]
    procs = []
    for chunk in chunks:
        p = subprocess.Popen(["bash", "-c", DPKG_LOOP], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        p.stdin.write("".join("%s %s\n" % ab for ab in chunk))
        p.stdin.close()
        procs.append(p)
    outs = []
    for p in procs:
        outs.append(p.stdout.read().split())
        assert p.wait(timeout=120) == 0
    answers = [None] * len(pairs)
    for j, out in enumerate(outs):
        assert len(out) == len(chunks[j])
        for k, ans in enumerate(out):
            answers[j + k * JOBS] = ans
    return answers


def vigil_answers(pairs, eco="dpkg"):
    binary = os.path.join(vt.BUILD_DIR, "tests", "unit", "vigil-vercmp")
    if not os.access(binary, os.X_OK):
        pytest.fail("%s not built (VIGIL_BUILD_DIR=%s)" % (binary, vt.BUILD_DIR))
    r = subprocess.run([binary, eco], input="".join("%s %s\n" % ab for ab in pairs),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=60, env=vt.sanitizer_env())
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert len(out) == len(pairs)
    return out


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg")
def test_dpkg_agrees_on_generated_pairs():
    pairs = gen_pairs(PAIRS, SEED)
    assert len(pairs) >= 3000
    ours = vigil_answers(pairs)
    theirs = dpkg_answers(pairs)
    assert "!" not in theirs, [p for p, t in zip(pairs, theirs) if t == "!"][:5]
    wrong = [(a, b, o, t) for (a, b), o, t in zip(pairs, ours, theirs) if o != t]
    assert not wrong, "%d of %d pairs differ from dpkg, e.g. %r" % (
        len(wrong), len(pairs), wrong[:10])
    # the generator reaches every outcome, equal ones included
    for ans in "<=>":
        assert theirs.count(ans) >= len(pairs) // 50, (ans, theirs.count(ans))


def test_vercmp_reports_bad_versions():
    out = vigil_answers([("1:1.0", "x1.0"), ("a:1", "1.0"), ("1.0-", "1.0")])
    assert out == ["! B upstream version does not start with a digit",
                   "! A epoch is not a number", "! A revision is empty"]
