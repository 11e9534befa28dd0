//! The JSON form of a record (`SESSION_SERIALIZATION_FORMAT=json`), as
//! Flask-Session's JSON serializer writes it: bytes as standard base64,
//! timestamps as RFC 3339 text, integer map keys as strings.
//!
//! Reading streams the JSON into the MessagePack the record keeps, in two
//! passes (the first counts each array's and object's items, which
//! MessagePack writes before them), so a stored JSON record costs memory in
//! proportion to its size and builds no tree of values.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rmpv::ValueRef;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::{CodecError, Record, codec, rfc3339, timestamp_parts};
use crate::msgpack;

pub(super) fn encode(record: &Record) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(64);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, FlaskJson);
    JsonRecord(record).serialize(&mut ser).map_err(codec)?;
    Ok(out)
}

/// A JSON object with a value per key, each kept as MessagePack.
pub(super) fn decode(bytes: &[u8]) -> Result<Record, CodecError> {
    let mut counts = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Count(&mut counts).deserialize(&mut de).map_err(codec)?;
    de.end().map_err(codec)?;
    let mut record = Record {
        buf: Vec::with_capacity(bytes.len()),
        ..Record::default()
    };
    let mut next = 0;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let top = Top {
        record: &mut record,
        counts: &counts,
        next: &mut next,
    };
    de::Deserializer::deserialize_map(&mut de, top).map_err(codec)?;
    Ok(record)
}

/// Pass one: the number of items in every array and object, in the order
/// they open.
struct Count<'c>(&'c mut Vec<u32>);

impl<'de> DeserializeSeed<'de> for Count<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Count<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let slot = self.0.len();
        self.0.push(0);
        let mut items = 0u32;
        while seq.next_element_seed(Count(&mut *self.0))?.is_some() {
            items = items
                .checked_add(1)
                .ok_or_else(|| de::Error::custom("too many items"))?;
        }
        self.0[slot] = items;
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let slot = self.0.len();
        self.0.push(0);
        let mut entries = 0u32;
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(Count(&mut *self.0))?;
            entries = entries
                .checked_add(1)
                .ok_or_else(|| de::Error::custom("too many items"))?;
        }
        self.0[slot] = entries;
        Ok(())
    }
}

/// Pass two, for the record's own object: each value written as MessagePack
/// into the record's buffer.
struct Top<'r> {
    record: &'r mut Record,
    counts: &'r [u32],
    next: &'r mut usize,
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        *self.next += 1;
        let record = self.record;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let key = record.append(key.as_bytes());
            let start = record.buf.len();
            map.next_value_seed(Write {
                out: &mut record.buf,
                counts: self.counts,
                next: &mut *self.next,
            })?;
            let value = &record.buf[start..];
            msgpack::value_len(value).map_err(de::Error::custom)?;
            let value = (start as u32, record.buf.len() as u32);
            record.entries.push(super::Entry { key, value });
        }
        Ok(())
    }
}

/// Pass two, for a value: its MessagePack, with the counts of pass one.
struct Write<'w> {
    out: &'w mut Vec<u8>,
    counts: &'w [u32],
    next: &'w mut usize,
}

impl Write<'_> {
    fn count<E: de::Error>(&mut self) -> Result<u32, E> {
        let count = self.counts.get(*self.next).copied();
        *self.next += 1;
        count.ok_or_else(|| E::custom("the JSON changed between passes"))
    }

    fn inner(&mut self) -> Write<'_> {
        Write {
            out: &mut *self.out,
            counts: self.counts,
            next: &mut *self.next,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Write<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

// Writing to a Vec cannot fail, so the encoders' results are dropped.
impl<'de> Visitor<'de> for Write<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        let _ = rmp::encode::write_bool(self.out, v);
        Ok(())
    }

    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        let _ = rmp::encode::write_sint(self.out, v);
        Ok(())
    }

    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        let _ = rmp::encode::write_uint(self.out, v);
        Ok(())
    }

    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        let _ = rmp::encode::write_f64(self.out, v);
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        let _ = rmp::encode::write_str(self.out, v);
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        let _ = rmp::encode::write_nil(self.out);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let items = self.count()?;
        let _ = rmp::encode::write_array_len(self.out, items);
        while seq.next_element_seed(self.inner())?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let entries = self.count()?;
        let _ = rmp::encode::write_map_len(self.out, entries);
        while map.next_key_seed(self.inner())?.is_some() {
            map.next_value_seed(self.inner())?;
        }
        Ok(())
    }
}

/// The JSON form of a record, as Flask-Session's JSON serializer writes it:
/// bytes as standard base64, timestamps as RFC 3339 text, integer map keys as
/// strings.
struct JsonRecord<'a>(&'a Record);

impl Serialize for JsonRecord<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.entries.len()))?;
        for (key, mut raw) in self.0.iter() {
            let key = std::str::from_utf8(key).map_err(S::Error::custom)?;
            let value = rmpv::decode::read_value_ref(&mut raw).map_err(S::Error::custom)?;
            map.serialize_entry(key, &JsonValue(&value))?;
        }
        map.end()
    }
}

struct JsonValue<'a, 'v>(&'a ValueRef<'v>);

impl Serialize for JsonValue<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            ValueRef::Nil => s.serialize_unit(),
            ValueRef::Boolean(b) => s.serialize_bool(*b),
            ValueRef::Integer(i) => match (i.as_u64(), i.as_i64()) {
                (Some(u), _) => s.serialize_u64(u),
                (None, Some(n)) => s.serialize_i64(n),
                _ => Err(S::Error::custom("integer out of range")),
            },
            ValueRef::F32(f) => json_float(s, f64::from(*f)),
            ValueRef::F64(f) => json_float(s, *f),
            ValueRef::String(text) => match text.as_str() {
                Some(text) => s.serialize_str(text),
                None => Err(S::Error::custom("a string is not valid UTF-8")),
            },
            ValueRef::Binary(bytes) => s.serialize_str(&STANDARD.encode(bytes)),
            ValueRef::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&JsonValue(item))?;
                }
                seq.end()
            }
            ValueRef::Map(pairs) => {
                let mut map = s.serialize_map(Some(pairs.len()))?;
                for (key, value) in pairs {
                    let key = match key {
                        ValueRef::String(text) => text
                            .as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| S::Error::custom("a map key is not valid UTF-8"))?,
                        ValueRef::Integer(i) => i.to_string(),
                        _ => return Err(S::Error::custom("JSON map keys must be strings or integers")),
                    };
                    map.serialize_entry(&key, &JsonValue(value))?;
                }
                map.end()
            }
            ValueRef::Ext(-1, data) => {
                let text = timestamp_parts(data)
                    .and_then(|(secs, nanos)| rfc3339(secs, nanos))
                    .ok_or_else(|| S::Error::custom("invalid timestamp"))?;
                s.serialize_str(&text)
            }
            ValueRef::Ext(kind, _) => Err(S::Error::custom(format!(
                "MessagePack extension type {kind} has no JSON form"
            ))),
        }
    }
}

/// Compact JSON with floats in the shortest round-trip form Flask-Session's
/// serializer writes (`1e100`, not `1e+100`).
struct FlaskJson;

impl serde_json::ser::Formatter for FlaskJson {
    fn write_f64<W: ?Sized + std::io::Write>(&mut self, writer: &mut W, value: f64) -> std::io::Result<()> {
        writer.write_all(ryu::Buffer::new().format_finite(value).as_bytes())
    }
}

fn json_float<S: Serializer>(s: S, f: f64) -> Result<S::Ok, S::Error> {
    if f.is_finite() {
        s.serialize_f64(f)
    } else {
        Err(S::Error::custom("JSON has no NaN or infinity"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a tree decoder makes of each top-level value.
    fn via_tree(json: &str) -> Vec<(String, Vec<u8>)> {
        let rmpv::Value::Map(pairs) = serde_json::from_str::<rmpv::Value>(json).unwrap() else {
            panic!("not an object")
        };
        pairs
            .into_iter()
            .map(|(k, v)| {
                let mut raw = Vec::new();
                rmpv::encode::write_value(&mut raw, &v).unwrap();
                (k.as_str().unwrap().to_owned(), raw)
            })
            .collect()
    }

    #[test]
    fn streams_the_same_messagepack_as_a_tree_decoder() {
        let big = format!("[{}]", vec!["[1,[2,{\"x\":[]}]]"; 300].join(","));
        let cases = [
            r#"{}"#.to_owned(),
            r#"{"_permanent":true,"user":"alice","n":-3,"big":18446744073709551615,"f":1.5e300}"#.to_owned(),
            r#"{"nested":{"a":[1,2,{"b":null}],"c":{}},"empty":[],"s":"\u00e9\ud83d\ude00\"\\"}"#.to_owned(),
            r#"{"neg":-9223372036854775808,"huge":1e400}"#.replace("1e400", "123456789012345678901234567890"),
            format!(r#"{{"wide":{big},"after":[[[]]]}}"#),
        ];
        for json in cases {
            let record = decode(json.as_bytes()).unwrap();
            let streamed: Vec<(String, Vec<u8>)> = record
                .iter()
                .map(|(k, v)| (String::from_utf8(k.to_vec()).unwrap(), v.to_vec()))
                .collect();
            assert_eq!(streamed, via_tree(&json), "{json}");
        }
    }

    #[test]
    fn refuses_what_is_not_one_object() {
        for bad in [
            &b"[1]"[..],
            b"1",
            b"{\"a\":1} x",
            b"{\"a\":",
            b"{\"a\":[1,2}",
            b"",
            b"{\"a\":\"\xff\"}",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn nesting_is_bounded_in_json_too() {
        let deep = |n: usize| format!("{{\"v\":{}1{}}}", "[".repeat(n), "]".repeat(n));
        assert!(decode(deep(msgpack::MAX_DEPTH).as_bytes()).is_ok());
        assert!(decode(deep(msgpack::MAX_DEPTH + 1).as_bytes()).is_err());
        assert!(decode(deep(100_000).as_bytes()).is_err());
    }
}
