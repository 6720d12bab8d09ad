-- Hourly rollups: what `stats` needs from every result, kept for ever while
-- raw results are deleted after `storage.retention`.
--
-- One row per probe and UTC hour. It is updated in the same transaction as
-- the results it counts (see src/store/rollup.rs), so it can never disagree
-- with them; the rows of a database that had results before this version
-- are built from those results when this migration runs.
--
-- hour:    whole hours since the Unix epoch (Unix ms / 3 600 000), UTC.
-- results: every result in the hour, whatever its status.
-- data:    the counts per status, per quarter hour (for time zones whose
--          offset is not a whole hour) and a log-scale latency histogram,
--          in the compact encoding that src/store/rollup.rs documents.
CREATE TABLE rollup (
    probe_id INTEGER NOT NULL REFERENCES probe(id),
    hour     INTEGER NOT NULL,
    results  INTEGER NOT NULL,
    data     BLOB NOT NULL,
    PRIMARY KEY (probe_id, hour)
) WITHOUT ROWID;
