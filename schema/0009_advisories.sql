-- SPDX-License-Identifier: Apache-2.0
-- Vulnerability advisories imported from OSV files (`vigil-collector
-- advisories import`, collector/vuln/): Debian, Ubuntu and Alpine.
--
-- Design. An advisory is one row (its OSV id is the key: ids are unique
-- across the databases, DSA-5678-1, UBUNTU-CVE-2024-1234, ALPINE-CVE-...);
-- what it affects is one advisory_affected row per version interval of one
-- source package in one ecosystem: [introduced, fixed), or [introduced,
-- last_affected], introduced NULL meaning "from the first version", both
-- ends NULL meaning "every version from introduced on, no fix yet"; an
-- advisory that only lists versions has one row [v, v] per version. The
-- versions are text, compared by the ecosystem's rules in C
-- (collector/vuln/version.c), never by SQL ordering.
--
-- A later matcher joins image packages to advisory_affected on (ecosystem,
-- package) -- or on (distro, release, package), the os-release ID and
-- VERSION_ID that an image reports -- using the source package name, then
-- decides the interval in C and keeps its matches in a table of its own
-- keyed by (image, package, advisory id). advisories.aliases (the OSV
-- aliases and upstream ids, CVE ids among them) answers "which advisories
-- are CVE-X" through its GIN index; the id itself is looked up by key.
--
-- Change detection: content_sha256 is the SHA-256 of the document with
-- sorted keys and no spaces; an import replaces an advisory's row and all
-- its ranges when it changed and leaves it alone when not.
--
-- Severity, on one scale: 0 unknown, 1 negligible, 2 low, 3 medium, 4 high,
-- 5 critical (Debian's urgency, Ubuntu's priority, a severity word).

CREATE TABLE advisories (
    id              text PRIMARY KEY,
    ecosystems      text[] NOT NULL,        -- of its ranges: {Debian:12}
    modified        timestamptz NOT NULL,
    published       timestamptz,
    withdrawn       timestamptz,            -- a matcher skips withdrawn ones
    aliases         text[] NOT NULL DEFAULT '{}',
    summary         text NOT NULL DEFAULT '',
    severity        smallint NOT NULL CHECK (severity BETWEEN 0 AND 5),
    content_sha256  text NOT NULL,
    raw_size        integer NOT NULL,
    source          text NOT NULL,          -- the file (and zip member) it came from
    imported_at     timestamptz NOT NULL DEFAULT now(),
    changed_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX advisories_aliases ON advisories USING gin (aliases);

CREATE TABLE advisory_affected (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    advisory_id     text NOT NULL REFERENCES advisories (id) ON DELETE CASCADE,
    ecosystem       text NOT NULL,          -- Debian:12, Ubuntu:22.04:LTS, Alpine:v3.19
    distro          text NOT NULL,          -- debian, ubuntu, alpine (os-release ID)
    release         text NOT NULL,          -- 12, 22.04, 3.19
    package         text NOT NULL,          -- the source package
    introduced      text,
    fixed           text,
    last_affected   text,
    severity        smallint NOT NULL CHECK (severity BETWEEN 0 AND 5)
);
CREATE INDEX advisory_affected_package ON advisory_affected (ecosystem, package);
CREATE INDEX advisory_affected_release ON advisory_affected (distro, release, package);
CREATE INDEX advisory_affected_advisory ON advisory_affected (advisory_id);
