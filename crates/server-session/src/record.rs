//! The stored record: an ordered map from key to value, and its two codecs.
//!
//! The layout is Flask-Session 0.8's: a MessagePack map (or a compact JSON
//! object) of the session's keys in insertion order, `_permanent` first for a
//! permanent session. Engine metadata lives under reserved keys that start with
//! `_ss_`, written only when a feature needs them, so a default record is
//! byte for byte what Flask-Session writes for the same data.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rmpv::Value;
use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// Flask's permanence flag.
pub(crate) const PERMANENT: &str = "_permanent";
/// Unix seconds at which the session was created (absolute timeout).
pub(crate) const CREATED: &str = "_ss_created";
/// A per-session lifetime override, in seconds.
pub(crate) const LIFETIME: &str = "_ss_lifetime";

/// The serialization format of stored records (`SESSION_SERIALIZATION_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// MessagePack, Flask-Session's default.
    #[default]
    MessagePack,
    /// Compact JSON.
    Json,
}

impl Format {
    fn other(self) -> Format {
        match self {
            Format::MessagePack => Format::Json,
            Format::Json => Format::MessagePack,
        }
    }
}

/// A record that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct CodecError(String);

/// The session's data, in insertion order.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Record {
    entries: Vec<(String, Value)>,
}

impl Record {
    /// Whether `key` is engine or Flask metadata rather than application data.
    pub(crate) fn is_metadata(key: &str) -> bool {
        key == PERMANENT || key.starts_with("_ss_")
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key`, keeping its position if it is already present.
    pub(crate) fn set(&mut self, key: &str, value: Value) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some((_, slot)) => *slot = value,
            None => self.entries.push((key.to_owned(), value)),
        }
    }

    pub(crate) fn remove(&mut self, key: &str) -> Option<Value> {
        let at = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(at).1)
    }

    /// Removes every application key; metadata stays.
    pub(crate) fn clear_data(&mut self) {
        self.entries.retain(|(k, _)| Record::is_metadata(k));
    }

    /// Whether the record holds any application key. A record without one is
    /// never stored.
    pub(crate) fn has_data(&self) -> bool {
        self.entries.iter().any(|(k, _)| !Record::is_metadata(k))
    }

    /// Application keys, in order.
    pub(crate) fn data_keys(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !Record::is_metadata(k))
    }

    pub(crate) fn permanent(&self) -> bool {
        matches!(self.get(PERMANENT), Some(Value::Boolean(true)))
    }

    /// An unsigned integer stored under a metadata key.
    pub(crate) fn meta_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }

    /// Encodes the record in `format`.
    pub(crate) fn encode(&self, format: Format) -> Result<Vec<u8>, CodecError> {
        match format {
            Format::MessagePack => {
                let mut out = Vec::with_capacity(64);
                let len =
                    u32::try_from(self.entries.len()).map_err(|_| CodecError("too many keys".into()))?;
                rmp::encode::write_map_len(&mut out, len).map_err(codec)?;
                for (key, value) in &self.entries {
                    rmp::encode::write_str(&mut out, key).map_err(codec)?;
                    rmpv::encode::write_value(&mut out, value).map_err(codec)?;
                }
                Ok(out)
            }
            Format::Json => {
                let mut out = Vec::with_capacity(64);
                let mut ser = serde_json::Serializer::with_formatter(&mut out, FlaskJson);
                JsonRecord(self).serialize(&mut ser).map_err(codec)?;
                Ok(out)
            }
        }
    }

    /// Decodes a record, trying `preferred` first and then the other format,
    /// as Flask-Session does (it never falls back to pickle, and neither does
    /// this).
    pub(crate) fn decode(bytes: &[u8], preferred: Format) -> Result<Record, CodecError> {
        Record::decode_as(bytes, preferred)
            .or_else(|first| Record::decode_as(bytes, preferred.other()).map_err(|_| first))
    }

    fn decode_as(bytes: &[u8], format: Format) -> Result<Record, CodecError> {
        let value = match format {
            Format::MessagePack => {
                let mut rest = bytes;
                let value = rmpv::decode::read_value(&mut rest).map_err(codec)?;
                if !rest.is_empty() {
                    return Err(CodecError("trailing bytes after the MessagePack map".into()));
                }
                value
            }
            Format::Json => serde_json::from_slice::<Value>(bytes).map_err(codec)?,
        };
        let Value::Map(pairs) = value else {
            return Err(CodecError("the record is not a map".into()));
        };
        let mut entries = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            match key {
                Value::String(s) if s.is_str() => entries.push((s.into_str().unwrap_or_default(), value)),
                _ => return Err(CodecError("a top-level key is not a string".into())),
            }
        }
        Ok(Record { entries })
    }
}

fn codec(err: impl fmt::Display) -> CodecError {
    CodecError(err.to_string())
}

/// Seconds and nanoseconds of a MessagePack timestamp extension (type -1)
/// payload in any of its three sizes.
pub(crate) fn timestamp_parts(data: &[u8]) -> Option<(i64, u32)> {
    match data.len() {
        4 => Some((i64::from(u32::from_be_bytes(data.try_into().ok()?)), 0)),
        8 => {
            let raw = u64::from_be_bytes(data.try_into().ok()?);
            let nanos = (raw >> 34) as u32;
            let secs = (raw & 0x3_ffff_ffff) as i64;
            (nanos < 1_000_000_000).then_some((secs, nanos))
        }
        12 => {
            let nanos = u32::from_be_bytes(data[..4].try_into().ok()?);
            let secs = i64::from_be_bytes(data[4..].try_into().ok()?);
            (nanos < 1_000_000_000).then_some((secs, nanos))
        }
        _ => None,
    }
}

/// RFC 3339 text of a UTC instant, microsecond precision as Python prints it.
pub(crate) fn rfc3339(secs: i64, nanos: u32) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(secs).ok()?;
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let micros = nanos / 1000;
    if micros != 0 {
        out.push_str(&format!(".{micros:06}"));
    }
    out.push('Z');
    Some(out)
}

/// The JSON form of a record, as Flask-Session's JSON serializer writes it:
/// bytes as standard base64, timestamps as RFC 3339 text, integer map keys as
/// strings.
struct JsonRecord<'a>(&'a Record);

impl Serialize for JsonRecord<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.entries.len()))?;
        for (key, value) in &self.0.entries {
            map.serialize_entry(key, &JsonValue(value))?;
        }
        map.end()
    }
}

struct JsonValue<'a>(&'a Value);

impl Serialize for JsonValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Nil => s.serialize_unit(),
            Value::Boolean(b) => s.serialize_bool(*b),
            Value::Integer(i) => match (i.as_u64(), i.as_i64()) {
                (Some(u), _) => s.serialize_u64(u),
                (None, Some(n)) => s.serialize_i64(n),
                _ => Err(S::Error::custom("integer out of range")),
            },
            Value::F32(f) => json_float(s, f64::from(*f)),
            Value::F64(f) => json_float(s, *f),
            Value::String(text) => match text.as_str() {
                Some(text) => s.serialize_str(text),
                None => Err(S::Error::custom("a string is not valid UTF-8")),
            },
            Value::Binary(bytes) => s.serialize_str(&STANDARD.encode(bytes)),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&JsonValue(item))?;
                }
                seq.end()
            }
            Value::Map(pairs) => {
                let mut map = s.serialize_map(Some(pairs.len()))?;
                for (key, value) in pairs {
                    let key = match key {
                        Value::String(text) => text
                            .as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| S::Error::custom("a map key is not valid UTF-8"))?,
                        Value::Integer(i) => i.to_string(),
                        _ => return Err(S::Error::custom("JSON map keys must be strings or integers")),
                    };
                    map.serialize_entry(&key, &JsonValue(value))?;
                }
                map.end()
            }
            Value::Ext(-1, data) => {
                let text = timestamp_parts(data)
                    .and_then(|(secs, nanos)| rfc3339(secs, nanos))
                    .ok_or_else(|| S::Error::custom("invalid timestamp"))?;
                s.serialize_str(&text)
            }
            Value::Ext(kind, _) => Err(S::Error::custom(format!(
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

    fn record(pairs: Vec<(&str, Value)>) -> Record {
        Record {
            entries: pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        }
    }

    #[test]
    fn set_keeps_position_and_remove_works() {
        let mut r = record(vec![("a", 1.into()), ("b", 2.into())]);
        r.set("a", 3.into());
        r.set("c", 4.into());
        assert_eq!(r.data_keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(r.remove("b"), Some(Value::from(2)));
        assert_eq!(r.remove("b"), None);
        assert_eq!(r.get("a"), Some(&Value::from(3)));
    }

    #[test]
    fn metadata_is_not_data() {
        let mut r = record(vec![(PERMANENT, true.into()), (CREATED, 5.into())]);
        assert!(!r.has_data());
        assert!(r.permanent());
        r.set("x", 1.into());
        assert!(r.has_data());
        r.clear_data();
        assert!(!r.has_data());
        assert_eq!(r.meta_u64(CREATED), Some(5));
    }

    #[test]
    fn falls_back_to_the_other_format() {
        let r = record(vec![(PERMANENT, true.into()), ("user", "alice".into())]);
        let json = r.encode(Format::Json).unwrap();
        assert_eq!(Record::decode(&json, Format::MessagePack).unwrap(), r);
        let mp = r.encode(Format::MessagePack).unwrap();
        assert_eq!(Record::decode(&mp, Format::Json).unwrap(), r);
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            &b""[..],
            b"\xc1",
            b"\x93\x01\x02\x03",
            b"\x81\x01\x02",
            b"[1]",
            b"{\"a\":1} x",
            b"\x80\x00",
        ] {
            assert!(Record::decode(bad, Format::MessagePack).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timestamps_in_all_sizes() {
        assert_eq!(timestamp_parts(&[0, 0, 0, 1]), Some((1, 0)));
        // The fixture's 2024-01-02T03:04:05.678901Z.
        let eight = [0xa1, 0xdc, 0xd4, 0x20, 0x65, 0x93, 0x7d, 0x25];
        let (secs, nanos) = timestamp_parts(&eight).unwrap();
        assert_eq!(rfc3339(secs, nanos).unwrap(), "2024-01-02T03:04:05.678901Z");
        let mut twelve = vec![0, 0, 0, 0];
        twelve.extend_from_slice(&(-1i64).to_be_bytes());
        assert_eq!(timestamp_parts(&twelve), Some((-1, 0)));
        assert_eq!(rfc3339(-1, 0).unwrap(), "1969-12-31T23:59:59Z");
        assert_eq!(timestamp_parts(&[1, 2, 3]), None);
    }
}
