//! Canonical JSON: sorted keys, no whitespace, shortest round-trip floats. The byte form that
//! content keys hash, independent of map ordering features anywhere in the dependency graph.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Writes `value` as canonical JSON.
pub fn to_canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

/// sha256 (lower-case hex) of the canonical JSON of `value`.
pub fn canonical_hash(value: &Value) -> String {
    sha256_hex(to_canonical_json(value).as_bytes())
}

/// sha256 (lower-case hex) of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_value(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        // -0.0 equals 0.0: one spelling, one key.
        Value::Number(n) if n.as_f64() == Some(0.0) && n.is_f64() => out.push_str("0.0"),
        // serde_json prints numbers with ryu (shortest round-trip) and escapes strings minimally.
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_and_whitespace_is_dropped() {
        let value = json!({"b": [1, 2.5, {"z": null, "a": true}], "a": "x y"});
        assert_eq!(
            to_canonical_json(&value),
            r#"{"a":"x y","b":[1,2.5,{"a":true,"z":null}]}"#
        );
    }

    #[test]
    fn minus_zero_and_zero_give_one_key() {
        assert_eq!(
            canonical_hash(&json!({"lr": -0.0})),
            canonical_hash(&json!({"lr": 0.0}))
        );
        assert_eq!(to_canonical_json(&json!([0, -0.0])), "[0,0.0]");
    }

    #[test]
    fn floats_use_the_shortest_round_trip_form() {
        assert_eq!(to_canonical_json(&json!(0.1)), "0.1");
        assert_eq!(to_canonical_json(&json!(1e-4)), "0.0001");
        assert_eq!(to_canonical_json(&json!(1.0)), "1.0");
    }
}
