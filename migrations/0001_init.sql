-- deepseek-watch schema, version 1.
-- Pragmas (WAL, synchronous, busy_timeout, foreign keys) are set by the store
-- on every connection, not here: they are per connection or per file, not schema.

-- One row per configured probe, ever. A probe removed from the config keeps
-- its row so its history stays readable.
CREATE TABLE probe (
    id     INTEGER PRIMARY KEY,
    name   TEXT NOT NULL UNIQUE,
    kind   TEXT NOT NULL,
    target TEXT NOT NULL
);

-- One row per probe run. Designed for tens of millions of rows: integer
-- timestamps (Unix milliseconds) and status codes (see Status::code), and a
-- clustered primary key that serves "one probe, a time range" directly.
-- WITHOUT ROWID keeps the key and the row in one b-tree: no second index.
CREATE TABLE result (
    probe_id    INTEGER NOT NULL REFERENCES probe(id),
    at          INTEGER NOT NULL,
    status      INTEGER NOT NULL,
    latency_ms  INTEGER,
    ttft_ms     INTEGER,
    http_status INTEGER,
    error       TEXT,
    detail      TEXT,
    PRIMARY KEY (probe_id, at)
) WITHOUT ROWID;
