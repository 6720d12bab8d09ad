//! Notes: a result's `error` and `detail` texts, stored once per distinct
//! pair in the `note` table and named by `result.note_id`
//! (migrations/0004_notes.sql says why).
//!
//! The writer keeps the ids of the pairs it used lately, so the usual result
//! ("2 models", an overload message seen a thousand times today) costs a
//! hash lookup, not a query. Notes are never deleted, so a remembered id can
//! only go stale when the transaction that added it rolls back: the writer
//! then calls [`Notes::forget`].

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

/// Most pairs remembered. A year of ten probes has about 11 000 distinct
/// pairs, most of them seen for a few minutes (a balance, a tokens-per-second
/// figure), so a few thousand keep the hit rate high at a few hundred KiB.
const REMEMBERED: usize = 4096;

/// The writer's memory of note ids; one per writer connection.
#[derive(Debug, Default)]
pub struct Notes {
    ids: HashMap<String, i64>,
}

impl Notes {
    /// The id of the note holding `error` and `detail`, added if new; `None`
    /// when both are absent (a result with nothing to say has no note).
    pub fn id(
        &mut self,
        conn: &Connection,
        error: Option<&str>,
        detail: Option<&str>,
    ) -> rusqlite::Result<Option<i64>> {
        if error.is_none() && detail.is_none() {
            return Ok(None);
        }
        let key = key(error, detail);
        if let Some(&id) = self.ids.get(&key) {
            return Ok(Some(id));
        }
        let found = conn
            .prepare_cached("SELECT id FROM note WHERE error IS ?1 AND detail IS ?2")?
            .query_row(params![error, detail], |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                conn.prepare_cached("INSERT INTO note (error, detail) VALUES (?1, ?2)")?
                    .execute(params![error, detail])?;
                conn.last_insert_rowid()
            }
        };
        // Crude but bounded: start afresh when full. The pairs in use come
        // back within a result or two of their probe.
        if self.ids.len() >= REMEMBERED {
            self.ids.clear();
        }
        self.ids.insert(key, id);
        Ok(Some(id))
    }

    /// Forgets every id: call after a transaction that may have added notes
    /// rolled back.
    pub fn forget(&mut self) {
        self.ids.clear();
    }
}

/// One string per pair, unambiguous whatever the texts hold: each part is
/// `-` when absent, else `+`, its length in bytes, `:` and the text.
fn key(error: Option<&str>, detail: Option<&str>) -> String {
    let mut k =
        String::with_capacity(error.map_or(1, |e| e.len() + 8) + detail.map_or(1, |d| d.len() + 8));
    for part in [error, detail] {
        match part {
            None => k.push('-'),
            Some(t) => {
                k.push('+');
                k.push_str(&t.len().to_string());
                k.push(':');
                k.push_str(t);
            }
        }
    }
    k
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM note", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn each_pair_is_stored_once() {
        let (_dir, conn) = fixture::db();
        let mut notes = Notes::default();
        let pairs = [
            (None, Some("2 models")),
            (Some("Rate Limit Reached"), None),
            (Some("stream cut"), Some("deepseek-flash 1 token")),
            (Some(""), None),
            (None, Some("")),
        ];
        let ids: Vec<_> = pairs
            .iter()
            .map(|(e, d)| notes.id(&conn, *e, *d).unwrap().unwrap())
            .collect();
        assert_eq!(count(&conn), 5);
        // Remembered, and found again once forgotten: the same ids, no new rows.
        for forget in [false, true] {
            if forget {
                notes.forget();
            }
            for ((e, d), id) in pairs.iter().zip(&ids) {
                assert_eq!(notes.id(&conn, *e, *d).unwrap(), Some(*id));
            }
        }
        assert_eq!(count(&conn), 5);
        assert_eq!(notes.id(&conn, None, None).unwrap(), None);
        assert_eq!(count(&conn), 5);
    }

    /// What goes in through the writer comes out of `results` and `status`
    /// the same, texts included.
    #[test]
    fn texts_round_trip_through_write_and_read() {
        use super::super::{query, record, rollup};
        use crate::result::{ProbeResult, Status};

        let (_dir, mut conn) = fixture::db();
        let id = fixture::probe(&conn, "api");
        let texts = [
            (None, Some("deepseek-flash 2 tokens 41 tok/s")),
            (Some("Server overloaded, please try again later."), None),
            (None, None),
            (
                Some("stream cut after 1 token: connection reset by peer"),
                Some("deepseek-flash 1 token"),
            ),
            (None, Some("deepseek-flash 2 tokens 41 tok/s")),
            (Some("服务器繁忙 \u{0} \"quoted\""), Some("")),
        ];
        let written: Vec<ProbeResult> = texts
            .iter()
            .enumerate()
            .map(|(i, (e, d))| ProbeResult {
                probe: "api".into(),
                at: query::from_ms(1_000 * (i as i64 + 1)),
                status: if e.is_some() {
                    Status::Busy
                } else {
                    Status::Up
                },
                latency_ms: Some(100 + i as u32),
                ttft_ms: Some(200),
                http_status: Some(200),
                error: e.map(String::from),
                detail: d.map(String::from),
            })
            .collect();
        let tx = conn.transaction().unwrap();
        let mut batch = rollup::Batch::default();
        let mut notes = Notes::default();
        for r in &written {
            let rec = record::Recorded {
                result: r.clone(),
                state: Default::default(),
                changes: vec![],
            };
            record::write(&tx, id, &rec, &Default::default(), &mut batch, &mut notes).unwrap();
        }
        batch.flush(&tx).unwrap();
        tx.commit().unwrap();
        assert_eq!(count(&conn), 4);

        let read = query::results(&conn, &query::ResultFilter::default()).unwrap();
        assert_eq!(
            serde_json::to_value(&read).unwrap(),
            serde_json::to_value(&written).unwrap()
        );
        let described = [query::Described {
            name: "api",
            kind: "chat",
            target: "x".into(),
        }];
        let status = query::status(&conn, &described, 10_000).unwrap();
        let last = status[0].last_result.clone().unwrap();
        assert_eq!(
            serde_json::to_value(&last).unwrap(),
            serde_json::to_value(written.last().unwrap()).unwrap()
        );
    }

    #[test]
    fn memory_is_bounded() {
        let (_dir, conn) = fixture::db();
        let mut notes = Notes::default();
        for i in 0..REMEMBERED + 10 {
            notes
                .id(&conn, None, Some(&format!("balance {i}.00 CNY")))
                .unwrap();
        }
        assert!(notes.ids.len() <= REMEMBERED);
        assert_eq!(count(&conn), (REMEMBERED + 10) as i64);
    }

    #[test]
    fn keys_do_not_collide() {
        assert_ne!(key(Some("a"), None), key(None, Some("a")));
        assert_ne!(key(Some("a+1:b"), None), key(Some("a"), Some("b")));
        assert_ne!(key(Some(""), None), key(None, None));
        assert_ne!(key(Some("1:"), Some("")), key(Some(""), Some("1:")));
    }
}
