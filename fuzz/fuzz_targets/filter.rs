//! The metadata filter language: JSON text → [`Filter`] → SQL. Every accepted filter must
//! compile to SQL that SQLite accepts and that evaluates to true or false (never `NULL`) for
//! every item, so a filter and `{"$not": filter}` split a table exactly.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use sqlite_vector::rusqlite::{params_from_iter, Connection};
use sqlite_vector::Filter;

/// Metadata of the test table: nested objects, arrays, every JSON type, a missing column
/// (`NULL`) and an empty object.
const ROWS: &[Option<&str>] = &[
    Some(r#"{"lang": "rust", "stars": 5, "tags": ["a", "b"], "meta": {"x": 1.5, "y": null}}"#),
    Some(r#"{"lang": "go", "stars": 2.5, "draft": true, "tags": [], "a": {"b": {"c": "d"}}}"#),
    Some(r#"{"lang": "C", "stars": -1, "tags": ["a", 1, null, [2], {"k": 3}], "n": null}"#),
    Some(r#"{"stars": "5", "weird key": "x", "$dollar": 1, "1": 2, "é": "ü"}"#),
    Some(r#"{"big": 9223372036854775807, "small": -9223372036854775808, "f": 1e300}"#),
    Some("{}"),
    None,
];

thread_local! {
    static DB: RefCell<Connection> = RefCell::new({
        let db = Connection::open_in_memory().expect("in-memory database");
        db.execute_batch("CREATE TABLE items(metadata BLOB)").expect("table");
        for m in ROWS {
            db.execute("INSERT INTO items VALUES (jsonb(?1))", [m]).expect("row");
        }
        db
    });
}

fn count(db: &Connection, filter: &Filter) -> usize {
    let (sql, params) = filter.to_sql("metadata");
    let query = format!("SELECT count(*), count({sql}), sum({sql} IS NULL) FROM items");
    // Every placeholder appears twice in the query text, so bind twice.
    let both = params.iter().chain(params.iter());
    let (n, non_null, nulls): (i64, i64, Option<i64>) = db
        .query_row(&query, params_from_iter(both), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap_or_else(|e| panic!("accepted filter gives bad SQL {sql:?}: {e}"));
    assert_eq!(n as usize, ROWS.len());
    assert_eq!(non_null, n, "filter evaluates to NULL for some row: {sql}");
    assert_eq!(nulls.unwrap_or(0), 0);
    let matching = format!("SELECT count(*) FROM items WHERE {sql}");
    let m: i64 = db
        .query_row(&matching, params_from_iter(params.iter()), |r| r.get(0))
        .unwrap_or_else(|e| panic!("accepted filter gives bad SQL {sql:?}: {e}"));
    m as usize
}

fuzz_target!(|text: &str| {
    let Ok(filter) = text.parse::<Filter>() else {
        return;
    };
    // Parsing the same text twice gives the same filter.
    assert_eq!(text.parse::<Filter>().ok().as_ref(), Some(&filter));
    DB.with(|db| {
        let db = db.borrow();
        let matched = count(&db, &filter);
        if filter.is_empty() {
            assert_eq!(matched, ROWS.len());
        }
        // `$not` is the exact complement (when the wrapped filter is still within the limits).
        let value: serde_json::Value = serde_json::from_str(text).expect("parsed above");
        if let Ok(negated) = Filter::parse(&serde_json::json!({ "$not": value })) {
            assert_eq!(matched + count(&db, &negated), ROWS.len(), "{text}");
        }
    });
});
