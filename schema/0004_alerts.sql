-- SPDX-License-Identifier: Apache-2.0
-- Alert forwarding: an outbox of findings to deliver to each receiver
-- (webhook, syslog), filled by a trigger in the transaction that writes the
-- finding, emptied by the collectors' senders (collector/alert/).

-- The receivers in force, registered by the collectors that serve them (at
-- start, then every minute): the trigger queues one outbox row per receiver
-- whose minimum severity a finding meets and that a collector registered
-- within the last 5 minutes.
CREATE TABLE alert_receivers (
    name            text PRIMARY KEY,       -- 'webhook', 'syslog'
    min_severity    smallint NOT NULL,      -- 1 info .. 5 critical
    update_interval interval NOT NULL,      -- "seen N times" at most this often
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- What is still to deliver. A row leaves when its receiver took it; until
-- then a failed attempt pushes next_at back (exponential backoff).
-- action: opened, reopened, resolved, or update (the count grew; at most
-- one pending update per receiver and finding).
CREATE TABLE alert_outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    receiver    text NOT NULL,
    finding_id  bigint NOT NULL,
    action      text NOT NULL CHECK (action IN ('opened', 'reopened', 'resolved', 'update')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    next_at     timestamptz NOT NULL DEFAULT now(),
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text
);
CREATE INDEX alert_outbox_due ON alert_outbox (receiver, next_at);
CREATE INDEX alert_outbox_finding ON alert_outbox (receiver, finding_id, id);
CREATE UNIQUE INDEX alert_outbox_one_update ON alert_outbox (receiver, finding_id)
    WHERE action = 'update';

-- The latest delivery per receiver and finding.
CREATE TABLE alert_sent (
    receiver    text NOT NULL,
    finding_id  bigint NOT NULL,
    action      text NOT NULL,
    count       bigint NOT NULL,
    sent_at     timestamptz NOT NULL,
    PRIMARY KEY (receiver, finding_id)
);

-- Queue a finding that became open, reopened or resolved, or a runtime
-- finding whose count grew (an update, due one update_interval later), for
-- every receiver. A standing posture finding's count only says it was seen
-- again in a periodic report: that is not news.
CREATE FUNCTION vigil_alert_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    act text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        act := 'opened';
    ELSIF NEW.state = 'resolved' THEN
        IF OLD.state = 'resolved' THEN
            RETURN NULL;
        END IF;
        act := 'resolved';
    ELSIF OLD.state = 'resolved' THEN
        act := 'reopened';
    ELSIF NEW.count > OLD.count AND NEW.kind = 'runtime' THEN
        act := 'update';
    ELSE
        RETURN NULL;
    END IF;
    INSERT INTO alert_outbox (receiver, finding_id, action, next_at)
    SELECT r.name, NEW.id, act,
           CASE WHEN act = 'update' THEN now() + r.update_interval ELSE now() END
    FROM alert_receivers r
    WHERE NEW.severity >= r.min_severity AND r.updated_at > now() - interval '5 minutes'
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER findings_alert_insert AFTER INSERT ON findings
    FOR EACH ROW EXECUTE FUNCTION vigil_alert_enqueue();
CREATE TRIGGER findings_alert_update AFTER UPDATE ON findings
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state
                       OR (NEW.count > OLD.count AND NEW.kind = 'runtime'))
    EXECUTE FUNCTION vigil_alert_enqueue();
