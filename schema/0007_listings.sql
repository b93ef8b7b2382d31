-- SPDX-License-Identifier: Apache-2.0
-- Vigil schema, version 7: the newest-first event listings of the API and
-- the status page (no filter, by kind, by severity, argv= search, keyset
-- pages and NDJSON/CSV exports) at millions of events.
--
-- A listing is "the latest LIMIT events in [since, until)", ordered by
-- (ts, agent_id, seq, idx) descending. BRIN on ts finds a time range but
-- cannot give its order, so every listing read the whole window and
-- sorted it (seconds at a few million events). A btree on ts in each daily
-- partition gives the order: the partitions are read newest first, each
-- backwards from until (or from a keyset cursor), and reading stops after
-- one page; an incremental sort orders the rows of one microsecond by the
-- rest of the key. Common kinds (process_exec) and severities are filtered
-- on the way; the rare ones keep their small partial indexes
-- (events_kind_ts, events_high_ts). argv= is a substring filter on the
-- same newest-first scan: a trigram index would serve it over wide windows
-- but made each insert about six times as costly, so it is left out.
--
-- Cost. Built here, in the migration's transaction, on every partition:
-- about 3 s per million events stored (2 cores), during which writes to
-- events wait (agents keep their batches in their spools) and queries go
-- on. About 220 MB per 10 million events. On ingest, one more btree insert
-- per event, at the right edge of the index since events arrive roughly in
-- time order. The BRIN index it supersedes is dropped (every range query
-- it served uses the btree).

CREATE INDEX events_ts ON events (ts);
DROP INDEX events_ts_brin;
