-- SPDX-License-Identifier: Apache-2.0
-- Indexes of the findings API (/api/v1/findings, the status page's
-- findings panel and the containers' open findings).

-- Open (and reopened) findings, newest first: the page's panel and
-- state=open pages.
CREATE INDEX findings_open_last_seen ON findings (last_seen DESC, id DESC)
    WHERE state <> 'resolved';
-- Findings of one rule, or of one container on any node, newest first.
CREATE INDEX findings_rule_last_seen ON findings (rule, last_seen DESC, id DESC);
CREATE INDEX findings_container ON findings (container_id, last_seen DESC);
-- The running containers with rules their latest report could not judge.
CREATE INDEX containers_rules_unknown ON containers (agent_id)
    WHERE state = 'running' AND rules_unknown IS NOT NULL;
