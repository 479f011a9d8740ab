//! Tests of the filter language: parsing, SQL generation, and results against a reference
//! evaluation in Rust.

use super::*;
use proptest::prelude::*;
use rusqlite::{params_from_iter, Connection};
use serde_json::json;

const ALL: [i64; 10] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

fn rows() -> Vec<(i64, Option<Value>)> {
    vec![
        (
            1,
            Some(
                json!({"lang": "rust", "stars": 5, "score": 0.5, "draft": false,
                "tags": ["a", "b"], "owner": {"name": "ann", "age": 30}, "with space": "yes"}),
            ),
        ),
        (
            2,
            Some(
                json!({"lang": "python", "stars": 3, "score": 3.0, "draft": true,
                "tags": ["b", "c"], "owner": {"name": "bob"}}),
            ),
        ),
        (
            3,
            Some(json!({"lang": "rust", "stars": "1", "score": 2.5, "tags": [], "note": null})),
        ),
        (
            4,
            Some(json!({"lang": "go", "stars": 1, "draft": null, "tags": "a",
                "owner": {"name": null}})),
        ),
        (
            5,
            Some(json!({"stars": 3.0, "flag": true, "tags": [1, "1", true, null, ["a"]]})),
        ),
        (6, Some(json!({"stars": true, "lang": "Rust", "count": 1}))),
        (7, Some(json!({}))),
        (
            8,
            Some(json!({"lang": "rust", "stars": 10, "owner": "carl", "tags": [{"t": "a"}]})),
        ),
        (
            9,
            Some(
                json!({"nested": {"a": {"b": {"c": 1}}}, "a.b": "dotted-literal",
                "score": -1}),
            ),
        ),
        (10, None),
    ]
}

fn db(rows: &[(i64, Option<Value>)]) -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("CREATE TABLE items(rowid INTEGER PRIMARY KEY, metadata BLOB, cl INTEGER);")
        .unwrap();
    let mut stmt = conn
        .prepare("INSERT INTO items(rowid, metadata, cl) VALUES (?1, jsonb(?2), 1)")
        .unwrap();
    for (id, meta) in rows {
        stmt.execute(rusqlite::params![id, meta.as_ref().map(Value::to_string)])
            .unwrap();
    }
    drop(stmt);
    conn
}

fn run(conn: &Connection, filter: &Filter) -> rusqlite::Result<Vec<i64>> {
    let (expr, params) = filter.to_sql("metadata");
    let sql = format!("SELECT rowid FROM items WHERE cl % 2 = 1 AND ({expr}) ORDER BY rowid");
    let mut stmt = conn.prepare(&sql)?;
    let ids = stmt
        .query_map(params_from_iter(params.iter()), |r| r.get::<_, i64>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(ids)
}

fn select(conn: &Connection, filter: &Value) -> Vec<i64> {
    let parsed = Filter::parse(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
    run(conn, &parsed).unwrap_or_else(|e| panic!("{filter}: {e}"))
}

fn complement(ids: &[i64]) -> Vec<i64> {
    ALL.iter().copied().filter(|i| !ids.contains(i)).collect()
}

#[track_caller]
fn check(conn: &Connection, filter: Value, expected: &[i64]) {
    assert_eq!(select(conn, &filter), expected, "filter {filter}");
    // The negation selects exactly the other rows.
    let not = json!({"$not": filter});
    assert_eq!(select(conn, &not), complement(expected), "filter {not}");
}

fn err(filter: Value) -> String {
    match Filter::parse(&filter) {
        Err(Error::InvalidFilter(msg)) => msg,
        other => {
            let got = format!("{other:?}");
            panic!("{filter:.200}: expected InvalidFilter, got {:.300}", got)
        }
    }
}

#[track_caller]
fn check_err(filter: Value, needles: &[&str]) {
    let msg = err(filter.clone());
    for needle in needles {
        assert!(msg.contains(needle), "{filter}: {msg:?} lacks {needle:?}");
    }
}

#[test]
fn bundled_sqlite_is_recent() {
    let conn = Connection::open_in_memory().unwrap();
    let v: String = conn
        .query_row("SELECT sqlite_version()", [], |r| r.get(0))
        .unwrap();
    assert!(v.as_str() >= "3.45", "{v}");
}

#[test]
fn empty_filter_matches_all() {
    let conn = db(&rows());
    let f = Filter::parse(&json!({})).unwrap();
    assert!(f.is_empty());
    let (sql, params) = f.to_sql("metadata");
    assert!(params.is_empty(), "{sql}");
    assert_eq!(run(&conn, &f).unwrap(), ALL);
    assert!(!Filter::parse(&json!({"a": 1})).unwrap().is_empty());
    assert!(!Filter::parse(&json!({"$and": [{}]})).unwrap().is_empty());
    check(&conn, json!({"$and": [{}]}), &ALL);
    check(&conn, json!({"$or": [{}, {"lang": "go"}]}), &ALL);
}

#[test]
fn eq_strings_numbers_bools_nulls() {
    let conn = db(&rows());
    check(&conn, json!({"lang": "rust"}), &[1, 3, 8]);
    check(&conn, json!({"lang": {"$eq": "rust"}}), &[1, 3, 8]);
    check(&conn, json!({"lang": "Rust"}), &[6]);
    check(&conn, json!({"lang": "rus"}), &[]);
    check(&conn, json!({"stars": 3}), &[2, 5]);
    check(&conn, json!({"stars": 3.0}), &[2, 5]);
    check(&conn, json!({"score": 3}), &[2]);
    check(&conn, json!({"score": -1}), &[9]);
    check(&conn, json!({"draft": false}), &[1]);
    check(&conn, json!({"draft": true}), &[2]);
    check(&conn, json!({"flag": true}), &[5]);
    check(&conn, json!({"note": null}), &[3]);
    check(&conn, json!({"draft": null}), &[4]);
    check(&conn, json!({"draft": {"$eq": null}}), &[4]);
    check(
        &conn,
        json!({"draft": {"$ne": null}}),
        &[1, 2, 3, 5, 6, 7, 8, 9, 10],
    );
    check(&conn, json!({"lang": "rust", "stars": 10}), &[8]);
}

#[test]
fn type_strictness() {
    let conn = db(&rows());
    check(&conn, json!({"stars": 1}), &[4]);
    check(&conn, json!({"stars": "1"}), &[3]);
    check(&conn, json!({"stars": true}), &[6]);
    check(&conn, json!({"stars": {"$in": [1, "1"]}}), &[3, 4]);
    check(&conn, json!({"count": 1}), &[6]);
    check(&conn, json!({"count": true}), &[]);
    check(&conn, json!({"count": "1"}), &[]);
    check(&conn, json!({"flag": 1}), &[]);
    check(&conn, json!({"flag": "true"}), &[]);
    check(&conn, json!({"draft": 0}), &[]);
    check(&conn, json!({"draft": false}), &[1]);
    check(&conn, json!({"note": 0}), &[]);
    check(&conn, json!({"note": ""}), &[]);
    check(&conn, json!({"stars": {"$gt": 0}}), &[1, 2, 4, 5, 8]);
    check(&conn, json!({"stars": {"$gt": "0"}}), &[3]);
}

#[test]
fn missing_fields() {
    let conn = db(&rows());
    check(&conn, json!({"missing": 1}), &[]);
    check(&conn, json!({"missing": null}), &[]);
    check(&conn, json!({"missing": {"$ne": 1}}), &ALL);
    check(&conn, json!({"missing": {"$ne": null}}), &ALL);
    check(
        &conn,
        json!({"missing": {"$in": [1, "a", null, true]}}),
        &[],
    );
    check(
        &conn,
        json!({"missing": {"$nin": [1, "a", null, true]}}),
        &ALL,
    );
    check(&conn, json!({"missing": {"$gt": 0}}), &[]);
    check(&conn, json!({"missing": {"$lte": "z"}}), &[]);
    check(&conn, json!({"missing": {"$exists": true}}), &[]);
    check(&conn, json!({"missing": {"$exists": false}}), &ALL);
    // Paths through scalars or absent objects are missing too.
    check(&conn, json!({"lang.x": {"$exists": false}}), &ALL);
    check(&conn, json!({"owner.name.x": {"$exists": true}}), &[]);
    check(
        &conn,
        json!({"owner.age": {"$ne": 30}}),
        &[2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
}

#[test]
fn exists() {
    let conn = db(&rows());
    check(&conn, json!({"draft": {"$exists": true}}), &[1, 2, 4]);
    check(
        &conn,
        json!({"draft": {"$exists": false}}),
        &[3, 5, 6, 7, 8, 9, 10],
    );
    check(&conn, json!({"note": {"$exists": true}}), &[3]);
    check(
        &conn,
        json!({"tags": {"$exists": true}}),
        &[1, 2, 3, 4, 5, 8],
    );
    check(&conn, json!({"owner": {"$exists": true}}), &[1, 2, 4, 8]);
}

#[test]
fn arrays_match_any_element() {
    let conn = db(&rows());
    // Row 5's nested ["a"] and row 8's {"t": "a"} are not elements equal to "a".
    check(&conn, json!({"tags": "a"}), &[1, 4]);
    check(&conn, json!({"tags": "b"}), &[1, 2]);
    check(
        &conn,
        json!({"tags": {"$ne": "b"}}),
        &[3, 4, 5, 6, 7, 8, 9, 10],
    );
    check(&conn, json!({"tags": {"$in": ["c", 1]}}), &[2, 5]);
    check(&conn, json!({"tags": {"$in": [1.0]}}), &[5]);
    check(
        &conn,
        json!({"tags": {"$nin": ["c", 1]}}),
        &[1, 3, 4, 6, 7, 8, 9, 10],
    );
    check(&conn, json!({"tags": "1"}), &[5]);
    check(&conn, json!({"tags": 1}), &[5]);
    check(&conn, json!({"tags": true}), &[5]);
    check(&conn, json!({"tags": false}), &[]);
    check(&conn, json!({"tags": null}), &[5]);
    check(&conn, json!({"tags": {"$in": ["a", "b"]}}), &[1, 2, 4]);
    // Comparisons do not look into arrays.
    check(&conn, json!({"tags": {"$gte": "a"}}), &[4]);
    check(&conn, json!({"tags": {"$gte": 0}}), &[]);
}

#[test]
fn objects_are_not_values() {
    let conn = db(&rows());
    // json_each over an object would list its members: they must not match.
    check(&conn, json!({"owner": "bob"}), &[]);
    check(&conn, json!({"owner": "ann"}), &[]);
    check(
        &conn,
        json!({"owner": {"$in": ["ann", "bob", "carl", 30]}}),
        &[8],
    );
    check(&conn, json!({"owner": {"$gt": ""}}), &[8]);
    check(&conn, json!({"nested": {"$ne": 1}}), &ALL);
}

#[test]
fn nested_paths_and_odd_keys() {
    let conn = db(&rows());
    check(&conn, json!({"owner.name": "ann"}), &[1]);
    check(&conn, json!({"owner.name": null}), &[4]);
    check(&conn, json!({"owner.name": {"$exists": true}}), &[1, 2, 4]);
    check(&conn, json!({"owner.age": {"$gte": 30}}), &[1]);
    check(&conn, json!({"nested.a.b.c": 1}), &[9]);
    check(&conn, json!({"nested.a.b": {"$exists": true}}), &[9]);
    // A dot separates keys; a key containing a dot is addressed with the dot escaped.
    check(&conn, json!({"a.b": "dotted-literal"}), &[]);
    check(&conn, json!({"a\\.b": "dotted-literal"}), &[9]);
    check(&conn, json!({"with space": "yes"}), &[1]);

    let keys = [
        "a\\b", "q\"uote", "it's", "ünï", "[0]", "tab\t", "0", "*", "a b.c", "\\\"", "x$",
    ];
    let mut doc = Map::new();
    for (i, k) in keys.iter().enumerate() {
        doc.insert((*k).to_owned(), json!(i));
    }
    doc.insert("x".into(), json!({"$dollar": "d", "y.z": 1}));
    let conn = db(&[
        (1, Some(Value::Object(doc))),
        (
            2,
            Some(json!({"a": {"b": 0}, "ab": 0, "b": 0, "q": 1, "it": 2})),
        ),
    ]);
    for (i, k) in keys.iter().enumerate() {
        // A dot in the key is escaped; so is a backslash right before one.
        let k = &k.replace("\\.", "\\\\.").replace('.', "\\.");
        let f = Value::Object(Map::from_iter([((*k).to_owned(), json!(i))]));
        assert_eq!(select(&conn, &f), [1], "key {k:?}");
        let f = Value::Object(Map::from_iter([((*k).to_owned(), json!(i + 100))]));
        assert_eq!(select(&conn, &f), Vec::<i64>::new(), "key {k:?}");
    }
    assert_eq!(select(&conn, &json!({"x.$dollar": "d"})), [1]);
    assert_eq!(select(&conn, &json!({"x.y\\.z": 1})), [1]);
    assert_eq!(select(&conn, &json!({"x.y.z": 1})), Vec::<i64>::new());
    assert_eq!(select(&conn, &json!({"a b.c": 8})), Vec::<i64>::new());
    assert_eq!(select(&conn, &json!({"a b\\.c": 8})), [1]);
    assert_eq!(select(&conn, &json!({"a.b": 0})), [2]);
    // `\\` is one backslash: `a\\.b` is the key `a\` then the key `b`.
    let conn = db(&[(1, Some(json!({"a\\": {"b": 5}})))]);
    assert_eq!(select(&conn, &json!({"a\\\\.b": 5})), [1]);
}

#[test]
fn comparisons() {
    let conn = db(&rows());
    check(&conn, json!({"stars": {"$gt": 3}}), &[1, 8]);
    check(&conn, json!({"stars": {"$gte": 3}}), &[1, 2, 5, 8]);
    check(&conn, json!({"stars": {"$lt": 3}}), &[4]);
    check(&conn, json!({"stars": {"$lte": 1}}), &[4]);
    check(&conn, json!({"stars": {"$gt": 2.5}}), &[1, 2, 5, 8]);
    check(&conn, json!({"stars": {"$gte": 1, "$lt": 5}}), &[2, 4, 5]);
    check(&conn, json!({"score": {"$lt": 0}}), &[9]);
    check(&conn, json!({"score": {"$gt": 1}}), &[2, 3]);
    check(&conn, json!({"lang": {"$gt": "python"}}), &[1, 3, 8]);
    check(&conn, json!({"lang": {"$gte": "python"}}), &[1, 2, 3, 8]);
    // BINARY order: "Rust" < "go" < "python".
    check(&conn, json!({"lang": {"$lt": "python"}}), &[4, 6]);
    check(&conn, json!({"lang": {"$lt": "go"}}), &[6]);
}

#[test]
fn logical_operators() {
    let conn = db(&rows());
    check(
        &conn,
        json!({"lang": "rust", "stars": {"$gte": 3},
               "$or": [{"tags": {"$in": ["a", "b"]}}, {"draft": {"$exists": false}}]}),
        &[1, 8],
    );
    check(
        &conn,
        json!({"$and": [{"lang": "rust"}, {"stars": {"$gt": 5}}]}),
        &[8],
    );
    check(
        &conn,
        json!({"$or": [{"lang": "go"}, {"flag": true}]}),
        &[4, 5],
    );
    check(
        &conn,
        json!({"$not": {"lang": "rust"}}),
        &[2, 4, 5, 6, 7, 9, 10],
    );
    check(
        &conn,
        json!({"$not": {"$not": {"lang": "rust"}}}),
        &[1, 3, 8],
    );
    check(
        &conn,
        json!({"lang": {"$nin": ["rust", "go"]}}),
        &[2, 5, 6, 7, 9, 10],
    );
    check(
        &conn,
        json!({"$or": [{"$and": [{"lang": "rust"}, {"tags": "a"}]}, {"score": {"$lt": 0}}]}),
        &[1, 9],
    );
    // Field-level $not is the complement of its operand.
    check(
        &conn,
        json!({"stars": {"$not": {"$gt": 3}}}),
        &[2, 3, 4, 5, 6, 7, 9, 10],
    );
    check(
        &conn,
        json!({"lang": {"$not": "rust"}}),
        &[2, 4, 5, 6, 7, 9, 10],
    );
    check(
        &conn,
        json!({"stars": {"$not": {"$gte": 1, "$lt": 5}}}),
        &[1, 3, 6, 7, 8, 9, 10],
    );
    check(
        &conn,
        json!({"stars": {"$gt": 1, "$not": {"$gt": 5}}}),
        &[1, 2, 5],
    );
}

#[test]
fn ne_is_not_eq_and_nin_is_not_in() {
    let conn = db(&rows());
    let fields = [
        "lang",
        "stars",
        "score",
        "draft",
        "tags",
        "owner",
        "owner.name",
        "note",
        "missing",
    ];
    let values = [
        json!("rust"),
        json!(1),
        json!(3),
        json!("1"),
        json!(true),
        json!(false),
        json!(null),
        json!("a"),
        json!(0.5),
    ];
    for field in fields {
        for value in &values {
            let ne = select(&conn, &json!({field: {"$ne": value}}));
            let not_eq = select(&conn, &json!({"$not": {field: {"$eq": value}}}));
            let field_not = select(&conn, &json!({field: {"$not": value}}));
            let eq = select(&conn, &json!({field: value}));
            assert_eq!(ne, not_eq, "{field} {value}");
            assert_eq!(ne, field_not, "{field} {value}");
            assert_eq!(ne, complement(&eq), "{field} {value}");
        }
        let vals = Value::Array(values.to_vec());
        let nin = select(&conn, &json!({field: {"$nin": vals}}));
        let in_ = select(&conn, &json!({field: {"$in": vals}}));
        assert_eq!(nin, complement(&in_), "{field}");
        let any: Vec<i64> = ALL
            .iter()
            .copied()
            .filter(|id| {
                values
                    .iter()
                    .any(|v| select(&conn, &json!({field: v})).contains(id))
            })
            .collect();
        assert_eq!(in_, any, "{field}");
    }
}

#[test]
fn from_str_and_equality() {
    let a: Filter = r#"{"a": {"$ne": 1}}"#.parse().unwrap();
    assert_eq!(a, Filter::parse(&json!({"$not": {"a": 1}})).unwrap());
    assert_ne!(a, Filter::parse(&json!({"a": 1})).unwrap());
    let b: Filter = "{}".parse().unwrap();
    assert!(b.is_empty());
    match "{not json".parse::<Filter>() {
        Err(Error::InvalidFilter(msg)) => assert!(msg.contains("malformed json"), "{msg}"),
        other => panic!("{other:?}"),
    }
    match "".parse::<Filter>() {
        Err(Error::InvalidFilter(msg)) => assert!(msg.contains("malformed json"), "{msg}"),
        other => panic!("{other:?}"),
    }
    match "[1]".parse::<Filter>() {
        Err(Error::InvalidFilter(msg)) => assert!(msg.contains("json object"), "{msg}"),
        other => panic!("{other:?}"),
    }
    let e = "{\"a\": {\"$foo\": 1}}".parse::<Filter>().unwrap_err();
    assert!(e.is_user_error());
    assert!(e.to_string().starts_with("invalid filter: "), "{e}");
}

#[test]
fn errors() {
    for top in [json!([1]), json!("x"), json!(3), json!(null), json!(true)] {
        check_err(top, &["must be a json object"]);
    }
    check_err(
        json!({"a": {"$regex": "x"}}),
        &["\"$regex\"", "supported: $eq"],
    );
    check_err(json!({"$foo": 1}), &["\"$foo\"", "supported"]);
    check_err(json!({"$eq": 1}), &["$eq", "applied to a field"]);
    check_err(json!({"a": {"$in": "x"}}), &["\"a\"", "$in", "array"]);
    check_err(json!({"a": {"$nin": 1}}), &["$nin", "array"]);
    check_err(json!({"a": {"$in": []}}), &["$in", "empty array"]);
    check_err(json!({"a": {"$in": [[1]]}}), &["$in", "an array"]);
    check_err(json!({"a": {"$in": [{"b": 1}]}}), &["$in", "an object"]);
    check_err(json!({"a": {"$gt": true}}), &["$gt", "a bool"]);
    check_err(json!({"a": {"$lte": null}}), &["$lte", "null"]);
    check_err(json!({"a": {"$lt": [1]}}), &["$lt", "an array"]);
    check_err(json!({"a": {"$eq": {"x": 1}}}), &["$eq", "an object"]);
    check_err(json!({"a": {"$ne": [1]}}), &["$ne", "an array"]);
    check_err(
        json!({"a": {"$exists": "yes"}}),
        &["$exists", "true or false"],
    );
    check_err(json!({"$and": {"a": 1}}), &["$and", "array"]);
    check_err(json!({"$or": []}), &["$or", "empty array"]);
    check_err(json!({"$or": [1]}), &["$or", "json object"]);
    check_err(json!({"$not": [{"a": 1}]}), &["$not", "json object"]);
    check_err(
        json!({"a": {"$and": [{"a": 1}]}}),
        &["$and", "filter level"],
    );
    check_err(json!({"a": {"b": 1}}), &["nested objects", "\"a.b\""]);
    check_err(
        json!({"a": {"$eq": 1, "b": 2}}),
        &["nested objects", "\"a.b\""],
    );
    check_err(json!({"a": {}}), &["\"a\"", "empty operator object"]);
    check_err(json!({"a": [1, 2]}), &["\"a\"", "$in"]);
    check_err(json!({"a..b": 1}), &["\"a..b\"", "empty segment"]);
    check_err(json!({".a": 1}), &["empty segment"]);
    check_err(json!({"a.": 1}), &["empty segment"]);
    check_err(json!({"": 1}), &["empty field name"]);
    check_err(json!({"a": {"$not": {"$regex": "x"}}}), &["$regex"]);
    check_err(json!({"a": {"$not": [1]}}), &["$in"]);
    // An error deep inside is still reported.
    check_err(
        json!({"$or": [{"a": 1}, {"$and": [{"b": {"$gt": false}}]}]}),
        &["$gt"],
    );
}

fn nest_not(levels: usize) -> Value {
    let mut f = json!({"lang": "rust"});
    for _ in 0..levels {
        f = json!({"$not": f});
    }
    f
}

#[test]
fn depth_limit() {
    let conn = db(&rows());
    // The innermost object is level levels + 1.
    let ok = nest_not(MAX_DEPTH - 1);
    assert_eq!(select(&conn, &ok), complement(&[1, 3, 8]));
    check_err(nest_not(MAX_DEPTH), &["nested too deeply"]);

    let mut mixed = json!({"stars": {"$not": {"$gt": 3}}});
    // {"$and": [..]} / {"$or": [..]} add one level each; the field's operator objects two.
    for i in 0..MAX_DEPTH - 3 {
        mixed = if i % 2 == 0 {
            json!({"$and": [mixed, {"missing": {"$exists": false}}]})
        } else {
            json!({"$or": [mixed, {"missing": 1}]})
        };
    }
    assert_eq!(select(&conn, &mixed), [2, 3, 4, 5, 6, 7, 9, 10]);
    check_err(json!({"$and": [mixed]}), &["nested too deeply"]);
    // Deep JSON text is refused cleanly too (by serde's own recursion limit or ours).
    let deep = "{\"$not\":".repeat(200) + "{}" + &"}".repeat(200);
    assert!(matches!(
        deep.parse::<Filter>(),
        Err(Error::InvalidFilter(_))
    ));
}

#[test]
fn size_limits() {
    let conn = db(&rows());
    let values: Vec<Value> = (0..MAX_IN_VALUES as i64).map(Value::from).collect();
    let f = json!({"stars": {"$in": values}});
    assert_eq!(select(&conn, &f), [1, 2, 4, 5, 8]);
    let mut more = values.clone();
    more.push(json!("x"));
    check_err(json!({"stars": {"$in": more}}), &["$in", "1001 values"]);

    // The largest accepted filter stays within SQLite's limits (bound parameters,
    // expression depth) and runs.
    let per = MAX_VALUES / MAX_CONDITIONS;
    let leaves: Vec<Value> = (0..MAX_CONDITIONS)
        .map(|i| {
            let vals: Vec<Value> = (0..per).map(|j| json!(format!("v{i}-{j}"))).collect();
            json!({ format!("f{}", i % 7): {"$nin": vals} })
        })
        .collect();
    let big = json!({"$and": leaves});
    assert_eq!(select(&conn, &big), ALL);
    let (_, params) = Filter::parse(&big).unwrap().to_sql("metadata");
    assert!(params.len() > MAX_VALUES);

    let mut too_many = leaves.clone();
    too_many.push(json!({"x": 1}));
    check_err(json!({"$or": too_many}), &["too large", "conditions"]);
    let mut too_many_values = leaves;
    too_many_values[0] = json!({"x": {"$in": [1, 2]}});
    too_many_values[1] = json!({"x": {"$in": (0..per + 10).map(Value::from).collect::<Vec<_>>()}});
    check_err(json!({"$or": too_many_values}), &["too large", "values"]);
}

#[test]
fn injection_is_harmless() {
    let conn = db(&rows());
    let evil = "x'); DROP TABLE items; --";
    let evil2 = "a\"] OR 1=1 --";
    let filters = [
        json!({ evil: evil }),
        json!({ evil: {"$in": [evil, evil2]} }),
        json!({ evil2: {"$gt": evil} }),
        json!({ "lang": evil }),
        json!({ "lang": {"$nin": [evil]}, "x": {"$exists": false} }),
        json!({ format!("{evil}.{evil2}"): {"$exists": true} }),
        json!({ "a\\": 1 }),
        json!({ "\\": {"$lt": "\\"} }),
    ];
    for f in &filters {
        let parsed = Filter::parse(f).unwrap();
        let (sql, _) = parsed.to_sql("metadata");
        assert!(!sql.contains("DROP") && !sql.contains("1=1"), "{sql}");
        let got = run(&conn, &parsed);
        if let Ok(ids) = got {
            let expected: &[i64] = if f.get("lang").and_then(|v| v.get("$nin")).is_some() {
                &ALL
            } else {
                &[]
            };
            assert_eq!(ids, expected, "{f}");
        }
    }
    let n: i64 = conn
        .query_row("SELECT count(*) FROM items", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 10);
}

// ---- property test: SQL against a reference evaluator; $not is the complement ----------

fn lookup<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(doc, |v, seg| v.as_object()?.get(seg))
}

fn scalar_eq(v: &Value, s: &Value) -> bool {
    match (v, s) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(a), Value::String(b)) => a == b,
        _ => false,
    }
}

fn ref_eq(field: Option<&Value>, s: &Value) -> bool {
    match field {
        None => false,
        Some(Value::Array(items)) => items.iter().any(|e| scalar_eq(e, s)),
        Some(v) => scalar_eq(v, s),
    }
}

fn ref_cmp(field: Option<&Value>, op: &str, x: &Value) -> bool {
    use std::cmp::Ordering;
    let ord = match (field, x) {
        (Some(Value::Number(a)), Value::Number(b)) => {
            a.as_f64().unwrap().partial_cmp(&b.as_f64().unwrap())
        }
        (Some(Value::String(a)), Value::String(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        _ => None,
    };
    match (ord, op) {
        (None, _) => false,
        (Some(o), "$gt") => o == Ordering::Greater,
        (Some(o), "$gte") => o != Ordering::Less,
        (Some(o), "$lt") => o == Ordering::Less,
        (Some(o), _) => o != Ordering::Greater,
    }
}

fn ref_field(field: Option<&Value>, spec: &Value) -> bool {
    match spec {
        Value::Object(ops) => ops.iter().all(|(op, x)| match op.as_str() {
            "$eq" => ref_eq(field, x),
            "$ne" => !ref_eq(field, x),
            "$in" => x.as_array().unwrap().iter().any(|s| ref_eq(field, s)),
            "$nin" => !x.as_array().unwrap().iter().any(|s| ref_eq(field, s)),
            "$exists" => field.is_some() == x.as_bool().unwrap(),
            "$not" => !ref_field(field, x),
            _ => ref_cmp(field, op, x),
        }),
        s => ref_eq(field, s),
    }
}

fn ref_filter(filter: &Value, doc: &Value) -> bool {
    filter
        .as_object()
        .unwrap()
        .iter()
        .all(|(k, v)| match k.as_str() {
            "$and" => v.as_array().unwrap().iter().all(|f| ref_filter(f, doc)),
            "$or" => v.as_array().unwrap().iter().any(|f| ref_filter(f, doc)),
            "$not" => !ref_filter(v, doc),
            path => ref_field(lookup(doc, path), v),
        })
}

fn arb_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(null)),
        Just(json!(true)),
        Just(json!(false)),
        (-1i64..3).prop_map(Value::from),
        Just(json!(1.5)),
        Just(json!(2.0)),
        prop::sample::select(vec!["", "x", "y", "1", "X"]).prop_map(Value::from),
    ]
}

fn arb_field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => arb_scalar(),
        2 => prop::collection::vec(
            prop_oneof![4 => arb_scalar(), 1 => Just(json!([1, "x"])), 1 => Just(json!({"x": 1}))],
            0..4,
        )
        .prop_map(Value::Array),
        1 => arb_scalar().prop_map(|s| json!({"x": s, "y": 1})),
    ]
}

fn arb_doc() -> impl Strategy<Value = Option<Value>> {
    let doc = prop::collection::btree_map(
        prop::sample::select(vec!["a", "b", "n"]),
        arb_field_value(),
        0..4,
    )
    .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
    prop_oneof![9 => doc.prop_map(Some), 1 => Just(None)]
}

fn arb_ops() -> impl Strategy<Value = Value> {
    let num_or_text = prop_oneof![
        (-1i64..3).prop_map(Value::from),
        Just(json!(1.5)),
        prop::sample::select(vec!["", "x", "y", "1"]).prop_map(Value::from),
    ];
    let one = prop_oneof![
        (prop::sample::select(vec!["$eq", "$ne"]), arb_scalar())
            .prop_map(|(op, s)| json!({ op: s })),
        (
            prop::sample::select(vec!["$in", "$nin"]),
            prop::collection::vec(arb_scalar(), 1..4)
        )
            .prop_map(|(op, s)| json!({ op: s })),
        (
            prop::sample::select(vec!["$gt", "$gte", "$lt", "$lte"]),
            num_or_text
        )
            .prop_map(|(op, s)| json!({ op: s })),
        any::<bool>().prop_map(|b| json!({"$exists": b})),
    ];
    let leaf = prop_oneof![
        1 => arb_scalar(),
        4 => one.clone(),
        1 => (one.clone(), one).prop_map(|(a, b)| {
            let mut m = a.as_object().unwrap().clone();
            m.extend(b.as_object().unwrap().clone());
            Value::Object(m)
        }),
    ];
    leaf.prop_recursive(2, 4, 1, |inner| inner.prop_map(|x| json!({"$not": x})))
}

fn arb_filter() -> impl Strategy<Value = Value> {
    let field = prop::sample::select(vec!["a", "b", "n", "n.x", "m"]);
    let cond = (field, arb_ops()).prop_map(|(f, ops)| json!({ f: ops }));
    cond.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(|v| json!({"$and": v})),
            prop::collection::vec(inner.clone(), 1..4).prop_map(|v| json!({"$or": v})),
            inner.clone().prop_map(|f| json!({"$not": f})),
            (inner.clone(), inner).prop_map(|(a, b)| {
                // Implicit AND of two filter objects' keys (later keys win on clashes).
                let mut m = a.as_object().unwrap().clone();
                m.extend(b.as_object().unwrap().clone());
                Value::Object(m)
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn not_is_complement_and_sql_matches_reference(
        docs in prop::collection::vec(arb_doc(), 1..9),
        filter in arb_filter(),
    ) {
        let rows: Vec<(i64, Option<Value>)> =
            docs.into_iter().enumerate().map(|(i, d)| (i as i64 + 1, d)).collect();
        let conn = db(&rows);
        let all: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
        let parsed = Filter::parse(&filter).unwrap();
        let got = run(&conn, &parsed).unwrap();
        let negated = Filter::parse(&json!({"$not": filter})).unwrap();
        let not_got = run(&conn, &negated).unwrap();
        let expected_not: Vec<i64> =
            all.iter().copied().filter(|id| !got.contains(id)).collect();
        prop_assert_eq!(&not_got, &expected_not, "filter {}", filter);
        let empty = json!({});
        let reference: Vec<i64> = rows
            .iter()
            .filter(|(_, d)| ref_filter(&filter, d.as_ref().unwrap_or(&empty)))
            .map(|(id, _)| *id)
            .collect();
        prop_assert_eq!(&got, &reference, "filter {} rows {:?}", filter, rows);
    }
}
