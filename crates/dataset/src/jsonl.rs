//! One line of a JSON-lines item file (`sqlite-vector import --jsonl`): a JSON object whose
//! fields give the item's id, vector, metadata and text, under names the caller chooses.

use serde_json::{Map, Value};

use crate::DatasetError;

/// The field names of an item line (defaults: `id`, `text`, `metadata`, `vector`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemFields {
    /// The id: a string, or an integer of at most 64 bits.
    pub id: String,
    /// The text: a string.
    pub text: String,
    /// The metadata; when absent from a line, every other field (except id, text and vector)
    /// becomes the metadata object.
    pub metadata: String,
    /// The vector: an array of numbers.
    pub vector: String,
}

impl Default for ItemFields {
    fn default() -> Self {
        ItemFields {
            id: "id".into(),
            text: "text".into(),
            metadata: "metadata".into(),
            vector: "vector".into(),
        }
    }
}

/// An item as a line gives it (nothing checked against a shard yet).
#[derive(Debug, Clone, PartialEq)]
pub struct ItemLine {
    /// The id (`None`: the shard makes one).
    pub id: Option<String>,
    /// The vector (empty when the line has none and none was required).
    pub vector: Vec<f32>,
    /// The metadata.
    pub metadata: Option<Value>,
    /// The text.
    pub text: Option<String>,
}

/// Parses line `lineno` (from 1), `line`, with the field names `fields`; `need_vector`
/// requires the vector field.
///
/// # Errors
/// [`DatasetError::Format`] with `path` "line N": not a JSON object, malformed JSON, an id that
/// is neither a string nor an integer of at most 64 bits (1.5, 1e3 and 2^64 would be rounded
/// through f64: refused), a text that is not a string, a vector that is not an array of
/// numbers, or no vector when one is needed.
pub fn parse_item(
    line: &str,
    lineno: usize,
    fields: &ItemFields,
    need_vector: bool,
) -> Result<ItemLine, DatasetError> {
    let at = |reason: String| DatasetError::Format {
        path: format!("line {lineno}"),
        reason,
    };
    let mut obj = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(o)) => o,
        Ok(_) => return Err(at("expected a JSON object".into())),
        Err(e) => return Err(at(format!("malformed JSON: {e}"))),
    };
    let id = match obj.remove(&fields.id) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        // Integers beyond 64 bits, like fractions and exponents, reach here as f64, which
        // would round them (two ids becoming one): refused rather than changed.
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Some(Value::Number(n)) => {
            return Err(at(format!(
                "{} {n} is not an integer of at most 64 bits: quote it as a string",
                fields.id
            )))
        }
        Some(_) => return Err(at(format!("{} must be a string or an integer", fields.id))),
    };
    let text = match obj.remove(&fields.text) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(at(format!("{} must be a string", fields.text))),
    };
    let vector = match obj.remove(&fields.vector) {
        Some(v) => serde_json::from_value::<Vec<f32>>(v).map_err(|e| {
            at(format!(
                "{} must be an array of numbers: {e}",
                fields.vector
            ))
        })?,
        None if need_vector => return Err(at(format!("no {} field", fields.vector))),
        None => Vec::new(),
    };
    let metadata = match obj.remove(&fields.metadata) {
        Some(m) => Some(m),
        None if obj.is_empty() => None,
        None => Some(Value::Object(std::mem::replace(&mut obj, Map::new()))),
    };
    Ok(ItemLine {
        id,
        vector,
        metadata,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_refusals() {
        let f = ItemFields::default();
        let it = parse_item(
            r#"{"id": 7, "vector": [1, 2.5], "lang": "en"}"#,
            1,
            &f,
            true,
        )
        .unwrap();
        assert_eq!(it.id.as_deref(), Some("7"));
        assert_eq!(it.vector, [1.0, 2.5]);
        assert_eq!(it.metadata, Some(serde_json::json!({"lang": "en"})));
        assert_eq!(it.text, None);
        let err = |line: &str, need: bool| parse_item(line, 3, &f, need).unwrap_err().to_string();
        assert_eq!(err("[1]", false), "line 3: expected a JSON object");
        assert!(err("{", false).starts_with("line 3: malformed JSON"));
        assert!(err(r#"{"id": 18446744073709551616}"#, false).contains("quote it"));
        assert!(err(r#"{"id": 1.5}"#, false).contains("quote it"));
        assert!(err(r#"{"text": 3}"#, false).contains("text must be a string"));
        assert!(err(r#"{"vector": "x"}"#, false).contains("array of numbers"));
        assert_eq!(err("{}", true), "line 3: no vector field");
        // Other names; an explicit metadata field keeps the other fields out of it.
        let g = ItemFields {
            id: "key".into(),
            metadata: "meta".into(),
            ..ItemFields::default()
        };
        let it = parse_item(r#"{"key": "a", "meta": {"x": 1}, "y": 2}"#, 1, &g, false).unwrap();
        assert_eq!(it.id.as_deref(), Some("a"));
        assert_eq!(it.metadata, Some(serde_json::json!({"x": 1})));
    }
}
