-- Notes: the error and detail texts of results, each distinct pair stored
-- once and named by its id in the result row.
--
-- A year of ten probes has about 11 000 distinct pairs ("2 models",
-- "Server overloaded, please try again later.", "deepseek-flash 1 token
-- 35 tok/s") in 7 million results: as text in every row they were a third
-- of the file; as an id they take one or two bytes. The pair, not each
-- text on its own, so that one column serves both: every column costs
-- every row a byte of record header, even when it is NULL.
--
-- Notes are never changed or deleted (a result that retention removed may
-- leave its note behind: at most those 11 000 small rows a year), so the
-- writer can remember their ids (src/store/note.rs). SQLite lets a UNIQUE
-- index hold two equal pairs when one of their texts is NULL; the single
-- writer looks a pair up before it adds one, so none is stored twice.
CREATE TABLE note (
    id     INTEGER PRIMARY KEY,
    error  TEXT,
    detail TEXT,
    CHECK (error IS NOT NULL OR detail IS NOT NULL)
);
CREATE UNIQUE INDEX note_words ON note (error, detail);

-- The texts already there, the most frequent first: ids below 128 take one
-- byte, larger ones (up to 32 767) two.
INSERT INTO note (error, detail)
    SELECT error, detail FROM result
    WHERE error IS NOT NULL OR detail IS NOT NULL
    GROUP BY error, detail
    ORDER BY count(*) DESC, error, detail;

-- `result` again, with note_id in place of error and detail. SQLite cannot
-- drop a column without rewriting every row either, and a note_id added
-- beside the old columns would cost two header bytes in every row for ever
-- (about 7% of the file). Same key, same meaning of every other column.
-- A year of ten probes (10.5 million rows, 470 MiB) takes about 16 s on a
-- small server; the old table's pages are then free, and in a database
-- with incremental vacuum retention hands them back (src/store/retention.rs).
CREATE TABLE result_v4 (
    probe_id    INTEGER NOT NULL REFERENCES probe(id),
    at          INTEGER NOT NULL,
    status      INTEGER NOT NULL,
    latency_ms  INTEGER,
    ttft_ms     INTEGER,
    http_status INTEGER,
    note_id     INTEGER REFERENCES note(id),
    PRIMARY KEY (probe_id, at)
) WITHOUT ROWID;

INSERT INTO result_v4 (probe_id, at, status, latency_ms, ttft_ms, http_status, note_id)
    SELECT r.probe_id, r.at, r.status, r.latency_ms, r.ttft_ms, r.http_status, n.id
    FROM result r LEFT JOIN note n ON n.error IS r.error AND n.detail IS r.detail
    ORDER BY r.probe_id, r.at;

DROP TABLE result;
ALTER TABLE result_v4 RENAME TO result;
