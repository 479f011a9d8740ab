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
//!   segments are keys too, not array indexes. A key that itself contains a dot cannot be
//!   addressed. Empty paths and empty segments (`"a..b"`, `".a"`, `"a."`) are refused.
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

/// Builds the SQLite JSON path of a dotted field key: `a.b` → `$."a"."b"`. Each segment is
/// quoted, with `\` and `"` escaped as in JSON (SQLite decodes such escapes in quoted labels).
fn json_path(key: &str) -> Result<String> {
    if key.is_empty() {
        return Err(invalid("empty field name"));
    }
    let mut path = String::with_capacity(key.len() + 8);
    path.push('$');
    for segment in key.split('.') {
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
mod tests {
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
        conn.execute_batch(
            "CREATE TABLE items(rowid INTEGER PRIMARY KEY, metadata BLOB, cl INTEGER);",
        )
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
        // A key containing a dot cannot be addressed.
        check(&conn, json!({"a.b": "dotted-literal"}), &[]);
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
            if k.contains('.') {
                continue;
            }
            let f = Value::Object(Map::from_iter([((*k).to_owned(), json!(i))]));
            assert_eq!(select(&conn, &f), [1], "key {k:?}");
            let f = Value::Object(Map::from_iter([((*k).to_owned(), json!(i + 100))]));
            assert_eq!(select(&conn, &f), Vec::<i64>::new(), "key {k:?}");
        }
        assert_eq!(select(&conn, &json!({"x.$dollar": "d"})), [1]);
        assert_eq!(select(&conn, &json!({"a b.c": 8})), Vec::<i64>::new());
        assert_eq!(select(&conn, &json!({"a.b": 0})), [2]);
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
        too_many_values[1] =
            json!({"x": {"$in": (0..per + 10).map(Value::from).collect::<Vec<_>>()}});
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
}
