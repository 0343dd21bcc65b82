//! A request body's JSON, read strictly. serde_json keeps the last of two equal keys in one
//! object without a word, so `{"amount": 1, "amount": 200000}` would mean whatever the reader
//! on the way picks (a proxy or a log may take the first): such a body is refused, naming the
//! key by its path.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::errors::ApiError;
use crate::domain::{FieldError, ValidationErrors};

/// Longest key path named in a refusal (a key may be as long as the body).
const MAX_PATH_CHARS: usize = 200;

/// The body as JSON: 400 when it is not JSON, 422 when an object has a key twice.
pub fn parse(body: &[u8]) -> Result<Value, ApiError> {
    let value = serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    let mut duplicate = None;
    let mut reader = serde_json::Deserializer::from_slice(body);
    // The body already parsed: the only way this pass fails is on a duplicate key.
    let _ = Keys { path: String::new(), duplicate: &mut duplicate }.deserialize(&mut reader);
    match duplicate {
        Some(path) => Err(ApiError::Invalid(ValidationErrors(vec![FieldError::new(path, "appears more than once")]))),
        None => Ok(value),
    }
}

/// Walks a value, checking every object's keys; the first key seen twice goes to `duplicate`.
struct Keys<'a> {
    /// Where the value is: dotted keys and array indices (`applicant.name`, `items.0`).
    path: String,
    duplicate: &'a mut Option<String>,
}

fn child(parent: &str, segment: &str) -> String {
    let path = if parent.is_empty() { segment.to_owned() } else { format!("{parent}.{segment}") };
    match path.char_indices().nth(MAX_PATH_CHARS) {
        Some((cut, _)) => format!("{}…", &path[..cut]),
        None => path,
    }
}

impl<'de> DeserializeSeed<'de> for Keys<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Keys<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        while seq
            .next_element_seed(Keys { path: child(&self.path, &index.to_string()), duplicate: &mut *self.duplicate })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = child(&self.path, &key);
            if !seen.insert(key) {
                *self.duplicate = Some(path);
                return Err(de::Error::custom("a duplicate key"));
            }
            map.next_value_seed(Keys { path, duplicate: &mut *self.duplicate })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duplicate_in(body: &str) -> Option<String> {
        match parse(body.as_bytes()) {
            Err(ApiError::Invalid(errors)) => Some(errors.0[0].field.clone()),
            Err(other) => panic!("{body}: {other}"),
            Ok(_) => None,
        }
    }

    #[test]
    fn a_key_twice_in_one_object_is_named_by_its_path() {
        assert_eq!(duplicate_in(r#"{"a": 1, "a": 2}"#).as_deref(), Some("a"));
        assert_eq!(duplicate_in(r#"{"a": {"b": 1, "c": {}, "b": 2}}"#).as_deref(), Some("a.b"));
        assert_eq!(duplicate_in(r#"{"items": [{}, {"k": 1, "k": 1}]}"#).as_deref(), Some("items.1.k"));
        let long = "x".repeat(1_000);
        let path = duplicate_in(&format!(r#"{{"{long}": 1, "{long}": 2}}"#)).unwrap();
        assert_eq!(path.chars().count(), MAX_PATH_CHARS + 1, "bounded, with an ellipsis");
    }

    #[test]
    fn equal_keys_in_different_objects_and_escaped_forms_of_one_key() {
        assert_eq!(duplicate_in(r#"{"a": {"k": 1}, "b": {"k": 1}, "k": [1, "k", {"k": null}]}"#), None);
        // `\u0061` is `a`: the same key once decoded.
        assert_eq!(duplicate_in(r#"{"a": 1, "\u0061": 2}"#).as_deref(), Some("a"));
        assert!(matches!(parse(b"{\"a\": "), Err(ApiError::MalformedJson(_))));
    }
}
