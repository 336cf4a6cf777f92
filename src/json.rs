//! Strict JSON, the one reader for every document edgeguard takes in: JOSE headers and JWT
//! claims sets, provider documents (discovery, JWKS, token and Graph answers), settings and its
//! own stored records. Duplicate member names are an error.
//!
//! One reader is also one copy of the parser in the Worker's wasm: a typed `from_slice::<T>`
//! per type instantiates serde_json's parser for each of them (2–5 KB of code apiece), where
//! [`decode`] parses into a `Value` here once and lets each type read that tree.
//!
//! RFC 7515 §5.2 and RFC 7519 §4 let a parser either reject duplicate member names or keep the
//! last one; RFC 8725 §3.2 warns that different parsers picking different duplicates is an
//! attack surface (one component sees `"alg":"RS256"`, another `"alg":"none"`). `serde_json`
//! silently keeps the last duplicate, so this module parses through its own visitor, which sees
//! every member name after unescaping (`"a\u006cg"` is `"alg"`) and checks each object — at
//! every nesting depth — for repeats. `serde_json`'s recursion limit (128) still applies.

use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::Cell;
use std::fmt;

/// Why a byte string is not a strict JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictJsonError {
    /// Some object repeats a member name.
    DuplicateMember,
    /// Not JSON at all (syntax, encoding, trailing data, nesting too deep).
    Invalid,
    /// Valid JSON, but the top level is not an object.
    NotObject,
}

/// Parse `bytes` as one JSON object, refusing duplicate member names anywhere inside it.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, StrictJsonError> {
    let duplicate = Cell::new(false);
    match parse_value(bytes, &duplicate) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(StrictJsonError::NotObject),
        Err(_) if duplicate.get() => Err(StrictJsonError::DuplicateMember),
        Err(_) => Err(StrictJsonError::Invalid),
    }
}

/// Read `bytes` as a `T`: strict JSON (no duplicate member names, nothing after the value),
/// then `T`'s own rules. The error names the line and column of a syntax error or duplicate
/// member, or the field that `T` could not take.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    T::deserialize(parse_value(bytes, &Cell::new(false))?)
}

fn parse_value(bytes: &[u8], duplicate: &Cell<bool>) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictSeed { duplicate }.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Builds a `serde_json::Value`, flagging duplicates through a side channel so the caller can
/// tell them apart from syntax errors without matching on error text.
#[derive(Clone, Copy)]
struct StrictSeed<'a> {
    duplicate: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if object.contains_key(&name) {
                self.duplicate.set(true);
                return Err(de::Error::custom("duplicate member name"));
            }
            let value = map.next_value_seed(self)?;
            object.insert(name, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn table() {
        use StrictJsonError::*;
        let cases: &[(&str, Result<(), StrictJsonError>)] = &[
            (r#"{"alg":"RS256","kid":"a"}"#, Ok(())),
            (r#"{"alg":"RS256","alg":"none"}"#, Err(DuplicateMember)),
            // The escaped spelling is the same member name.
            (r#"{"alg":"RS256","a\u006cg":"none"}"#, Err(DuplicateMember)),
            // Same name in different objects is fine...
            (r#"{"a":{"x":1},"b":{"x":2},"x":3}"#, Ok(())),
            // ...but a repeat inside a nested object is not.
            (r#"{"cnf":{"jkt":"a","jkt":"b"}}"#, Err(DuplicateMember)),
            (r#"{"list":[{"k":1,"k":2}]}"#, Err(DuplicateMember)),
            // Names that differ only by case or escape of a different char are distinct.
            (r#"{"sub":"a","Sub":"b","s\u0075b2":"c"}"#, Ok(())),
            (r#"{"a":1} "#, Ok(())),
            (r#"{"a":1} x"#, Err(Invalid)),
            (r#"{"a":1"#, Err(Invalid)),
            (r#"{"a":"\ud800"}"#, Err(Invalid)),
            ("[1,2]", Err(NotObject)),
            ("\"text\"", Err(NotObject)),
            ("", Err(Invalid)),
        ];
        for (input, want) in cases {
            assert_eq!(parse_object(input.as_bytes()).map(|_| ()), *want, "{input}");
        }
    }

    #[test]
    fn values_match_serde_json() {
        let input = r#"{"n":-1,"u":18446744073709551615,"f":1.5,"b":true,"z":null,"s":"\u00e9",
                        "a":[1,"x",{"k":[]}]}"#;
        let strict = parse_object(input.as_bytes()).unwrap();
        let plain: Map<String, Value> = serde_json::from_str(input).unwrap();
        assert_eq!(strict, plain);
    }

    #[test]
    fn decode_reads_types_strictly_and_says_where() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Doc {
            issuer: String,
            #[serde(default)]
            scopes: Vec<String>,
        }
        let doc: Doc = decode(br#"{"issuer":"https://i","scopes":["openid"],"extra":1}"#).unwrap();
        assert_eq!(doc, Doc { issuer: "https://i".into(), scopes: vec!["openid".into()] });
        let twice = decode::<Doc>(br#"{"issuer":"https://i","issuer":"https://evil"}"#).unwrap_err();
        assert_eq!(twice.to_string(), "duplicate member name at line 1 column 30");
        let missing = decode::<Doc>(br#"{"scopes":[]}"#).unwrap_err();
        assert_eq!(missing.to_string(), "missing field `issuer`");
        assert!(decode::<Doc>(br#"{"issuer":"https://i"} {}"#).is_err(), "trailing data");
        assert_eq!(decode::<Vec<u8>>(b"[1,2]").unwrap(), vec![1, 2], "not only objects");
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(parse_object(deep.as_bytes()), Err(StrictJsonError::Invalid));
    }
}
