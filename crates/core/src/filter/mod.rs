//! The metadata filter language.
//!
//! A search may carry a filter over the items' JSON metadata, written in the style known from
//! mem0, Chroma and MongoDB:
//!
//! ```json
//! {"lang": "rust", "stars": {"$gte": 3},
//!  "$or": [{"tag": {"$in": ["a", "b"]}}, {"draft": {"$exists": false}}]}
//! ```
//!
//! [`Filter::parse`] (or [`str::parse`]) checks a filter and [`Filter::to_sql`] compiles it to a
//! SQL boolean expression over the JSONB metadata column. Every user value **and** every JSON
//! path is passed as a bound parameter (`?`); nothing the user wrote is ever spliced into the SQL
//! text.
//!
//! # Structure
//!
//! * A filter is a JSON **object**; several keys are an implicit AND. `{}` matches every item.
//!   Anything else at the top (array, string, number, bool, null) is refused.
//! * A key not starting with `$` is a **field path**. Dots separate nested object keys: `"a.b"`
//!   is the key `b` of the object under key `a`. Each segment is an object key (quoted in the
//!   SQLite path, so spaces, `'`, `"`, `\`, `$`, `[` or non-ASCII characters are fine); numeric
//!   segments are keys too, not array indexes. A key that itself contains a dot is written with
//!   the dot escaped by a backslash: `"v1\\.2"` in JSON (the key text `v1\.2`) addresses the key
//!   `v1.2`; `\\` is a backslash, and a backslash before any other character stands for itself.
//!   Empty paths and empty segments (`"a..b"`, `".a"`, `"a."`) are refused.
//! * The value of a field is either
//!   * a scalar (string, number, bool) or `null`: shorthand for `{"$eq": value}`;
//!   * an **operator object** whose keys all start with `$`, e.g. `{"$gte": 1, "$lt": 5}`
//!     (several operators are an AND).
//!
//!   A plain nested object (`{"a": {"b": 1}}`, use `{"a.b": 1}`), an object mixing `$`-keys and
//!   plain keys, an empty object and an array (use `$in`) are refused.
//! * Top-level operators: `$and` and `$or` take a non-empty array of filter objects, `$not` takes
//!   one filter object. They can be nested and combined with field keys.
//!
//! # Operators
//!
//! | operator | operand | an item matches when the field… |
//! |---|---|---|
//! | `$eq` | scalar or `null` | equals the operand, or is an array with an element equal to it |
//! | `$ne` | scalar or `null` | exactly when `$eq` does not match (so a missing field matches) |
//! | `$in` | non-empty array of scalars / `null` | `$eq`-matches one of them |
//! | `$nin` | non-empty array of scalars / `null` | exactly when `$in` does not match |
//! | `$gt` `$gte` `$lt` `$lte` | number or string | is a number (resp. string) that compares so |
//! | `$exists` | bool | `true`: is present with any value, including `null`; `false`: is absent |
//! | `$not` | operator object or scalar | exactly when the operand does not match |
//!
//! Equality is **type-strict**: the string `"1"` does not equal the number `1`, and `true` does
//! not equal `1`. Integers and reals compare numerically (`3` equals `3.0`). Strings compare by
//! their UTF-8 bytes (SQLite's `BINARY` collation), so they are case-sensitive and `"Z" < "a"`.
//! `null` as an operand of `$eq`/`$ne`/`$in`/`$nin` means "the field holds JSON `null`"; a
//! missing field is not `null` (use `$exists`). Objects and arrays are never operands.
//!
//! **Arrays** (MongoDB semantics, e.g. for tags): when the field holds an array, `$eq`/`$in`
//! match if *any* element matches, and `$ne`/`$nin` match if *no* element does. Only the array's
//! own elements are looked at, not nested arrays or objects inside it. The comparisons `$gt`,
//! `$gte`, `$lt` and `$lte` apply to scalar fields only: an array (or an object, bool, null) does
//! not match them.
//!
//! # Totality and missing fields
//!
//! Every predicate evaluates to true or false, never to SQL `NULL`, so `$not` is the exact
//! complement of its operand and `$ne` is exactly `$not $eq` (likewise `$nin` and `$not $in`,
//! `$exists: false` and `$not $exists: true`). For a **missing** field (and for items whose
//! metadata is SQL `NULL`): `$eq`, `$in`, `$gt`, `$gte`, `$lt`, `$lte` and `$exists: true` are
//! false; `$ne`, `$nin` and `$exists: false` are true.
//!
//! A field-level `$not` (`{"stars": {"$not": {"$gt": 3}}}`) is supported and is the complement
//! of its operand: it matches items where the field is missing or is not a number above 3.
//!
//! # Limits
//!
//! Filters are refused when nested more than 32 levels deep (each filter object, operator
//! object and `$not` operand is a level), when an `$in`/`$nin` has more than 1,000 values, when
//! they hold more than 512 conditions in all or more than 4,096 values in all. These bounds keep
//! the generated SQL well inside SQLite's limits on bound parameters and expression depth.
//!
//! Unknown operators (`$regex`, `$foo`, ...) are refused with the list of supported ones.

use std::str::FromStr;

use rusqlite::types::Value as SqlValue;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Deepest allowed nesting of filter objects, operator objects and `$not` operands.
const MAX_DEPTH: usize = 32;
/// Most values in one `$in` / `$nin`.
const MAX_IN_VALUES: usize = 1000;
/// Most conditions (field operators) in one filter.
const MAX_CONDITIONS: usize = 512;
/// Most operand values in one filter.
const MAX_VALUES: usize = 4096;

const SUPPORTED: &str = "$eq, $ne, $in, $nin, $gt, $gte, $lt, $lte, $exists, $and, $or, $not";

/// A parsed metadata filter.
///
/// See the [module documentation](self) for the language and its semantics.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    root: Node,
}

/// A node of the filter tree.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// All children match (an empty list matches everything).
    All(Vec<Node>),
    /// At least one child matches (never empty).
    Any(Vec<Node>),
    /// The child does not match.
    Not(Box<Node>),
    /// A condition on the field at `path` (an SQLite JSON path such as `$."a"."b"`).
    Cond { path: String, op: Op },
}

/// A condition on one field. Negated operators (`$ne`, `$nin`, `$exists: false`) are
/// [`Node::Not`] of these.
#[derive(Debug, Clone, PartialEq)]
enum Op {
    /// The field, or an element of it if it is an array, equals one of the values.
    In(Vec<Scalar>),
    /// The field is a scalar of the operand's kind (number or string) comparing so.
    Cmp(CmpOp, Scalar),
    /// The field is present.
    Exists,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl CmpOp {
    fn sql(self) -> &'static str {
        match self {
            CmpOp::Gt => ">",
            CmpOp::Gte => ">=",
            CmpOp::Lt => "<",
            CmpOp::Lte => "<=",
        }
    }
}

/// An operand value.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Real(f64),
    Text(String),
}

impl Scalar {
    fn sql_value(&self) -> SqlValue {
        match self {
            Scalar::Null => SqlValue::Null,
            Scalar::Bool(b) => SqlValue::Integer(i64::from(*b)),
            Scalar::Int(i) => SqlValue::Integer(*i),
            Scalar::Real(r) => SqlValue::Real(*r),
            Scalar::Text(s) => SqlValue::Text(s.clone()),
        }
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidFilter(msg.into())
}

impl Filter {
    /// Parses a filter from a JSON value.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidFilter`] when the value is not a valid filter (not an object, unknown
    /// operator, operand of the wrong type, bad field path, too deep or too large).
    pub fn parse(value: &Value) -> Result<Filter> {
        let mut parser = Parser::default();
        let root = parser.filter(value, 1, "filter")?;
        Ok(Filter { root })
    }

    /// Compiles to a SQL boolean expression over the JSONB column `column` (a trusted
    /// identifier chosen by the crate, e.g. `metadata` or `items.metadata`), with `?`
    /// placeholders, and the values to bind to them in order.
    ///
    /// The expression is always true or false (never `NULL`) and is parenthesized, so it can be
    /// AND-ed into a `WHERE` clause. The column name must not be one of the columns of
    /// SQLite's `json_each` (`key`, `value`, `type`, `atom`, `id`, `parent`, `fullkey`, `path`,
    /// `json`, `root`) unless qualified with its table name.
    pub fn to_sql(&self, column: &str) -> (String, Vec<SqlValue>) {
        let mut out = SqlWriter {
            col: column,
            sql: String::new(),
            params: Vec::new(),
        };
        out.node(&self.root);
        (out.sql, out.params)
    }

    /// True if the filter is `{}` (matches all).
    pub fn is_empty(&self) -> bool {
        matches!(&self.root, Node::All(children) if children.is_empty())
    }
}

impl FromStr for Filter {
    type Err = Error;

    /// Parses a filter from JSON text; malformed JSON is an [`Error::InvalidFilter`] carrying
    /// serde's message.
    fn from_str(s: &str) -> Result<Filter> {
        let value: Value =
            serde_json::from_str(s).map_err(|e| invalid(format!("malformed json: {e}")))?;
        Filter::parse(&value)
    }
}

// ---- parsing ---------------------------------------------------------------------------------

/// Parsing state: running totals checked against the size limits.
#[derive(Default)]
struct Parser {
    conditions: usize,
    values: usize,
}

impl Parser {
    fn check_depth(depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(invalid(format!(
                "filter is nested too deeply (more than {MAX_DEPTH} levels)"
            )));
        }
        Ok(())
    }

    fn add_condition(&mut self, values: usize) -> Result<()> {
        self.conditions += 1;
        self.values += values;
        if self.conditions > MAX_CONDITIONS {
            return Err(invalid(format!(
                "filter is too large (more than {MAX_CONDITIONS} conditions)"
            )));
        }
        if self.values > MAX_VALUES {
            return Err(invalid(format!(
                "filter is too large (more than {MAX_VALUES} values)"
            )));
        }
        Ok(())
    }

    /// A filter object (`what` names it in error messages).
    fn filter(&mut self, value: &Value, depth: usize, what: &str) -> Result<Node> {
        Self::check_depth(depth)?;
        let Value::Object(map) = value else {
            return Err(invalid(format!(
                "{what} must be a json object, got {}",
                kind(value)
            )));
        };
        let mut children = Vec::with_capacity(map.len());
        for (key, val) in map {
            let node = if key.starts_with('$') {
                self.top_operator(key, val, depth)?
            } else {
                let path = json_path(key)?;
                self.field(key, &path, val, depth)?
            };
            children.push(node);
        }
        Ok(if children.len() == 1 {
            children.pop().expect("one child")
        } else {
            Node::All(children)
        })
    }

    /// `$and`, `$or` or `$not` at filter level.
    fn top_operator(&mut self, key: &str, val: &Value, depth: usize) -> Result<Node> {
        match key {
            "$and" | "$or" => {
                let Value::Array(items) = val else {
                    return Err(invalid(format!(
                        "{key} takes a non-empty array of filter objects, got {}",
                        kind(val)
                    )));
                };
                if items.is_empty() {
                    return Err(invalid(format!(
                        "{key} takes a non-empty array of filter objects, got an empty array"
                    )));
                }
                let what = format!("each element of {key}");
                let children = items
                    .iter()
                    .map(|item| self.filter(item, depth + 1, &what))
                    .collect::<Result<Vec<_>>>()?;
                Ok(if key == "$and" {
                    Node::All(children)
                } else {
                    Node::Any(children)
                })
            }
            "$not" => {
                let inner = self.filter(val, depth + 1, "the operand of $not")?;
                Ok(Node::Not(Box::new(inner)))
            }
            _ if is_field_operator(key) => Err(invalid(format!(
                "operator {key} must be applied to a field, e.g. {{\"field\": {{\"{key}\": ...}}}}"
            ))),
            _ => Err(unknown_operator(key)),
        }
    }

    /// The value of field `key` (whose SQLite path is `path`).
    fn field(&mut self, key: &str, path: &str, val: &Value, depth: usize) -> Result<Node> {
        match val {
            Value::Object(ops) => self.operators(key, path, ops, depth + 1),
            Value::Array(_) => Err(invalid(format!(
                "field {key:?}: an array is not a value; use {{\"$in\": [...]}} to match any of \
                 several values"
            ))),
            scalar => {
                let s = scalar_operand(key, "$eq", scalar)?;
                self.add_condition(1)?;
                Ok(cond(path, Op::In(vec![s])))
            }
        }
    }

    /// An operator object on field `key`.
    fn operators(
        &mut self,
        key: &str,
        path: &str,
        ops: &Map<String, Value>,
        depth: usize,
    ) -> Result<Node> {
        Self::check_depth(depth)?;
        if ops.is_empty() {
            return Err(invalid(format!(
                "field {key:?}: empty operator object; use e.g. {{\"$exists\": true}}"
            )));
        }
        if let Some(plain) = ops.keys().find(|k| !k.starts_with('$')) {
            return Err(invalid(format!(
                "field {key:?}: nested objects are not supported (found key {plain:?}); use a \
                 dotted path like \"{key}.{plain}\" or an operator like \"$eq\""
            )));
        }
        let mut children = Vec::with_capacity(ops.len());
        for (op, operand) in ops {
            children.push(self.operator(key, path, op, operand, depth)?);
        }
        Ok(if children.len() == 1 {
            children.pop().expect("one child")
        } else {
            Node::All(children)
        })
    }

    /// One operator `op` applied to field `key`.
    fn operator(
        &mut self,
        key: &str,
        path: &str,
        op: &str,
        operand: &Value,
        depth: usize,
    ) -> Result<Node> {
        let node = match op {
            "$eq" | "$ne" => {
                let s = scalar_operand(key, op, operand)?;
                self.add_condition(1)?;
                let eq = cond(path, Op::In(vec![s]));
                if op == "$eq" {
                    eq
                } else {
                    Node::Not(Box::new(eq))
                }
            }
            "$in" | "$nin" => {
                let Value::Array(items) = operand else {
                    return Err(invalid(format!(
                        "field {key:?}: {op} takes a non-empty array of values, got {}",
                        kind(operand)
                    )));
                };
                if items.is_empty() {
                    return Err(invalid(format!(
                        "field {key:?}: {op} takes a non-empty array of values, got an empty array"
                    )));
                }
                if items.len() > MAX_IN_VALUES {
                    return Err(invalid(format!(
                        "field {key:?}: {op} has {} values, at most {MAX_IN_VALUES} are allowed",
                        items.len()
                    )));
                }
                let values = items
                    .iter()
                    .map(|item| scalar_operand(key, op, item))
                    .collect::<Result<Vec<_>>>()?;
                self.add_condition(values.len())?;
                let any = cond(path, Op::In(values));
                if op == "$in" {
                    any
                } else {
                    Node::Not(Box::new(any))
                }
            }
            "$gt" | "$gte" | "$lt" | "$lte" => {
                let cmp = match op {
                    "$gt" => CmpOp::Gt,
                    "$gte" => CmpOp::Gte,
                    "$lt" => CmpOp::Lt,
                    _ => CmpOp::Lte,
                };
                let s = match operand {
                    Value::Number(_) | Value::String(_) => scalar_operand(key, op, operand)?,
                    _ => {
                        return Err(invalid(format!(
                            "field {key:?}: {op} takes a number or a string, got {}",
                            kind(operand)
                        )))
                    }
                };
                self.add_condition(1)?;
                cond(path, Op::Cmp(cmp, s))
            }
            "$exists" => {
                let Value::Bool(present) = operand else {
                    return Err(invalid(format!(
                        "field {key:?}: $exists takes true or false, got {}",
                        kind(operand)
                    )));
                };
                self.add_condition(0)?;
                let exists = cond(path, Op::Exists);
                if *present {
                    exists
                } else {
                    Node::Not(Box::new(exists))
                }
            }
            "$not" => Node::Not(Box::new(self.field(key, path, operand, depth)?)),
            "$and" | "$or" => {
                return Err(invalid(format!(
                    "field {key:?}: {op} is only allowed at filter level, e.g. \
                     {{\"{op}\": [{{\"{key}\": ...}}, ...]}}"
                )))
            }
            _ => return Err(unknown_operator(op)),
        };
        Ok(node)
    }
}

fn cond(path: &str, op: Op) -> Node {
    Node::Cond {
        path: path.to_owned(),
        op,
    }
}

fn is_field_operator(op: &str) -> bool {
    matches!(
        op,
        "$eq" | "$ne" | "$in" | "$nin" | "$gt" | "$gte" | "$lt" | "$lte" | "$exists"
    )
}

fn unknown_operator(op: &str) -> Error {
    invalid(format!("unknown operator {op:?} (supported: {SUPPORTED})"))
}

/// Converts an operand of `op` on field `key` to a scalar; objects and arrays are refused.
fn scalar_operand(key: &str, op: &str, value: &Value) -> Result<Scalar> {
    Ok(match value {
        Value::Null => Scalar::Null,
        Value::Bool(b) => Scalar::Bool(*b),
        Value::Number(n) => {
            match n.as_i64() {
                Some(i) => Scalar::Int(i),
                None => Scalar::Real(n.as_f64().ok_or_else(|| {
                    invalid(format!("field {key:?}: {op}: unsupported number {n}"))
                })?),
            }
        }
        Value::String(s) => Scalar::Text(s.clone()),
        Value::Array(_) | Value::Object(_) => {
            return Err(invalid(format!(
                "field {key:?}: {op} takes a string, number, bool or null, got {}",
                kind(value)
            )))
        }
    })
}

/// Names the JSON type of `value` for error messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The object keys of a dotted field key: `a.b` → `a`, `b`; `\.` is a dot inside a key and
/// `\\` a backslash (a backslash before anything else stands for itself).
fn segments(key: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = key.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' if matches!(chars.peek(), Some('.' | '\\')) => {
                let next = chars.next().expect("peeked");
                out.last_mut().expect("one segment").push(next);
            }
            '.' => out.push(String::new()),
            _ => out.last_mut().expect("one segment").push(ch),
        }
    }
    out
}

/// Builds the SQLite JSON path of a dotted field key: `a.b` → `$."a"."b"` (see [`segments`]).
/// Each segment is quoted, with `\` and `"` escaped as in JSON (SQLite decodes such escapes in
/// quoted labels).
fn json_path(key: &str) -> Result<String> {
    if key.is_empty() {
        return Err(invalid("empty field name"));
    }
    let mut path = String::with_capacity(key.len() + 8);
    path.push('$');
    for segment in segments(key) {
        if segment.is_empty() {
            return Err(invalid(format!("field path {key:?} has an empty segment")));
        }
        path.push_str(".\"");
        for ch in segment.chars() {
            match ch {
                '\\' => path.push_str("\\\\"),
                '"' => path.push_str("\\\""),
                _ => path.push(ch),
            }
        }
        path.push('"');
    }
    Ok(path)
}

// ---- SQL generation --------------------------------------------------------------------------

struct SqlWriter<'a> {
    col: &'a str,
    sql: String,
    params: Vec<SqlValue>,
}

impl SqlWriter<'_> {
    fn push(&mut self, s: &str) {
        self.sql.push_str(s);
    }

    /// Writes `json_type(col, ?)` / `json_extract(col, ?)` / ... with `path` bound.
    fn json_fn(&mut self, func: &str, path: &str) {
        self.sql.push_str(func);
        self.sql.push('(');
        self.sql.push_str(self.col);
        self.sql.push_str(", ?)");
        self.params.push(SqlValue::Text(path.to_owned()));
    }

    fn node(&mut self, node: &Node) {
        match node {
            Node::All(children) if children.is_empty() => self.push("(1)"),
            Node::All(children) => self.balanced(children, " AND "),
            Node::Any(children) => self.balanced(children, " OR "),
            Node::Not(inner) => {
                self.push("(NOT ");
                self.node(inner);
                self.push(")");
            }
            Node::Cond { path, op } => self.cond(path, op),
        }
    }

    /// Joins `children` with `op` as a balanced tree, so that long lists stay far below
    /// SQLite's expression depth limit.
    fn balanced(&mut self, children: &[Node], op: &str) {
        if let [only] = children {
            self.node(only);
            return;
        }
        let (left, right) = children.split_at(children.len() / 2);
        self.push("(");
        self.balanced(left, op);
        self.push(op);
        self.balanced(right, op);
        self.push(")");
    }

    fn cond(&mut self, path: &str, op: &Op) {
        match op {
            Op::Exists => {
                self.push("(");
                self.json_fn("json_type", path);
                self.push(" IS NOT NULL)");
            }
            Op::Cmp(cmp, operand) => {
                // `json_type` is NULL for a missing field, which COALESCE turns into false.
                self.push("COALESCE(");
                self.json_fn("json_type", path);
                self.push(match operand {
                    Scalar::Text(_) => " = 'text' AND ",
                    _ => " IN ('integer', 'real') AND ",
                });
                self.json_fn("json_extract", path);
                self.push(" ");
                self.push(cmp.sql());
                self.push(" ?, 0)");
                self.params.push(operand.sql_value());
            }
            Op::In(values) => self.member(path, values),
        }
    }

    /// The field (or an element of it, if it is an array) equals one of `values`.
    ///
    /// ```sql
    /// COALESCE(CASE json_type(col, ?path)
    ///   WHEN 'null' THEN 0|1  WHEN 'true' THEN 0|1  WHEN 'false' THEN 0|1
    ///   WHEN 'text' THEN json_extract(col, ?path) IN (?texts)
    ///   WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each(col, ?path) AS e WHERE <element>)
    ///   WHEN 'object' THEN 0
    ///   ELSE json_extract(col, ?path) IN (?numbers)   -- 'integer', 'real' or missing (NULL)
    /// END, 0)
    /// ```
    fn member(&mut self, path: &str, values: &[Scalar]) {
        let has = |want: &Scalar| values.iter().any(|v| v == want);
        let flag = |b: bool| if b { "1" } else { "0" };
        let has_null = has(&Scalar::Null);
        let has_true = has(&Scalar::Bool(true));
        let has_false = has(&Scalar::Bool(false));
        let texts: Vec<&Scalar> = values
            .iter()
            .filter(|v| matches!(v, Scalar::Text(_)))
            .collect();
        let numbers: Vec<&Scalar> = values
            .iter()
            .filter(|v| matches!(v, Scalar::Int(_) | Scalar::Real(_)))
            .collect();

        self.push("COALESCE(CASE ");
        self.json_fn("json_type", path);
        self.push(" WHEN 'null' THEN ");
        self.push(flag(has_null));
        self.push(" WHEN 'true' THEN ");
        self.push(flag(has_true));
        self.push(" WHEN 'false' THEN ");
        self.push(flag(has_false));
        self.push(" WHEN 'text' THEN ");
        if texts.is_empty() {
            self.push("0");
        } else {
            self.json_fn("json_extract", path);
            self.in_list(&texts);
        }
        self.push(" WHEN 'array' THEN EXISTS (SELECT 1 FROM ");
        self.json_fn("json_each", path);
        self.push(" AS e WHERE ");
        let mut terms: Vec<&str> = Vec::new();
        if has_null {
            terms.push("e.type = 'null'");
        }
        if has_true {
            terms.push("e.type = 'true'");
        }
        if has_false {
            terms.push("e.type = 'false'");
        }
        self.push(&terms.join(" OR "));
        if !texts.is_empty() {
            if !terms.is_empty() {
                self.push(" OR ");
            }
            self.push("(e.type = 'text' AND e.value");
            self.in_list(&texts);
            self.push(")");
        }
        if !numbers.is_empty() {
            if !terms.is_empty() || !texts.is_empty() {
                self.push(" OR ");
            }
            self.push("(e.type IN ('integer', 'real') AND e.value");
            self.in_list(&numbers);
            self.push(")");
        }
        self.push(") WHEN 'object' THEN 0 ELSE ");
        if numbers.is_empty() {
            self.push("0");
        } else {
            self.json_fn("json_extract", path);
            self.in_list(&numbers);
        }
        self.push(" END, 0)");
    }

    /// Writes ` = ?` or ` IN (?, ?, ...)` and binds `values`.
    fn in_list(&mut self, values: &[&Scalar]) {
        if let [only] = values {
            self.push(" = ?");
            self.params.push(only.sql_value());
            return;
        }
        self.push(" IN (");
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.push("?");
            self.params.push(v.sql_value());
        }
        self.push(")");
    }
}

#[cfg(test)]
mod tests;
