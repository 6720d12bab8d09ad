-- Outages, the tracker's state, events and their deliveries (the outbox).
-- Every row here is written in the same transaction as the result that
-- caused it, so a crash can never leave an outage without its event or an
-- event without its deliveries.

-- Times are Unix milliseconds; cause is a Status code.
CREATE TABLE outage (
    id             INTEGER PRIMARY KEY,
    probe_id       INTEGER NOT NULL REFERENCES probe(id),
    started_at     INTEGER NOT NULL,
    ended_at       INTEGER,
    cause          INTEGER NOT NULL,
    failed_results INTEGER NOT NULL
);
CREATE INDEX outage_by_probe ON outage (probe_id, started_at);
CREATE INDEX outage_by_start ON outage (started_at);
-- At most one open outage per probe.
CREATE UNIQUE INDEX outage_open ON outage (probe_id) WHERE ended_at IS NULL;

-- The outage tracker's state per probe (JSON of outage::TrackerState),
-- rewritten with every result so a restart resumes exactly.
CREATE TABLE tracker (
    probe_id INTEGER PRIMARY KEY REFERENCES probe(id),
    state    TEXT NOT NULL
) WITHOUT ROWID;

-- One row per event (outage, recovered, action_needed, reminder, test).
-- payload is the notify::Notification JSON without its delivery_id.
CREATE TABLE event (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL,
    probe_id   INTEGER REFERENCES probe(id),
    outage_id  INTEGER REFERENCES outage(id),
    created_at INTEGER NOT NULL,
    message    TEXT NOT NULL,
    payload    TEXT NOT NULL
);
CREATE INDEX event_by_time ON event (created_at);

-- The outbox: one row per event and subscribed channel. id is the stable
-- delivery_id receivers use to drop duplicates.
CREATE TABLE delivery (
    id              TEXT PRIMARY KEY,
    event_id        INTEGER NOT NULL REFERENCES event(id),
    channel         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_error      TEXT
);
CREATE INDEX delivery_due ON delivery (next_attempt_at) WHERE state = 'pending';
CREATE INDEX delivery_by_event ON delivery (event_id);

-- Every delivery attempt, for `notifications` and for post-mortems.
CREATE TABLE attempt (
    delivery_id TEXT NOT NULL REFERENCES delivery(id),
    at          INTEGER NOT NULL,
    ok          INTEGER NOT NULL,
    error       TEXT
);
CREATE INDEX attempt_by_delivery ON attempt (delivery_id, at);
