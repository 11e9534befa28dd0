//! Values as Flask sees them: the [`Timestamp`] type for Python's aware
//! datetimes, and the check that refuses what Flask could not read.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};

use crate::error::ValueError;
use crate::msgpack::{self, Item, WalkError};
use crate::record::{Format, rfc3339, timestamp_parts};

/// The name rmp-serde gives MessagePack extension values.
const EXT: &str = "_ExtStruct";
/// The MessagePack timestamp extension type.
const TIMESTAMP_EXT: i8 = -1;

/// A UTC instant, stored as the MessagePack timestamp extension: what a
/// Python `datetime` with a time zone becomes in Flask-Session, and what it
/// reads back as one. In the JSON format it is RFC 3339 text, as Flask-Session
/// writes datetimes there; `Timestamp` reads both.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use server_session::Timestamp;
///
/// let login = Timestamp::from_unix(1_704_164_645, 678_901_000).unwrap();
/// assert_eq!(login.to_string(), "2024-01-02T03:04:05.678901Z");
/// assert_eq!(SystemTime::from(login), SystemTime::UNIX_EPOCH + Duration::new(1_704_164_645, 678_901_000));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
}

impl Timestamp {
    /// The instant `secs` seconds and `nanos` nanoseconds after the Unix
    /// epoch; `None` when `nanos` is a second or more.
    pub fn from_unix(secs: i64, nanos: u32) -> Option<Timestamp> {
        (nanos < 1_000_000_000).then_some(Timestamp { secs, nanos })
    }

    /// The current time.
    pub fn now() -> Timestamp {
        SystemTime::now().into()
    }

    /// Whole seconds since the Unix epoch (negative before it).
    pub fn unix_seconds(&self) -> i64 {
        self.secs
    }

    /// Nanoseconds past [`unix_seconds`](Self::unix_seconds).
    pub fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// The extension payload, in the smallest of the three layouts, as
    /// MessagePack libraries (and Flask-Session's) write it.
    fn payload(&self) -> Vec<u8> {
        if self.nanos == 0 && u32::try_from(self.secs).is_ok() {
            (self.secs as u32).to_be_bytes().to_vec()
        } else if (0..1 << 34).contains(&self.secs) {
            ((u64::from(self.nanos) << 34) | self.secs as u64)
                .to_be_bytes()
                .to_vec()
        } else {
            let mut out = self.nanos.to_be_bytes().to_vec();
            out.extend_from_slice(&self.secs.to_be_bytes());
            out
        }
    }

    fn parse(text: &str) -> Option<Timestamp> {
        let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
        Timestamp::from_unix(at.unix_timestamp(), at.nanosecond())
    }
}

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Timestamp {
        match time.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(after) => Timestamp {
                secs: after.as_secs() as i64,
                nanos: after.subsec_nanos(),
            },
            Err(before) => {
                let before = before.duration();
                let (secs, nanos) = (before.as_secs() as i64, before.subsec_nanos());
                match nanos {
                    0 => Timestamp {
                        secs: -secs,
                        nanos: 0,
                    },
                    _ => Timestamp {
                        secs: -secs - 1,
                        nanos: 1_000_000_000 - nanos,
                    },
                }
            }
        }
    }
}

impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> SystemTime {
        let whole = Duration::from_secs(t.secs.unsigned_abs());
        let base = if t.secs >= 0 {
            SystemTime::UNIX_EPOCH + whole
        } else {
            SystemTime::UNIX_EPOCH - whole
        };
        base + Duration::from_nanos(u64::from(t.nanos))
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC, with microseconds when there are any, as Python
    /// prints an aware datetime.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match rfc3339(self.secs, self.nanos) {
            Some(text) => f.write_str(&text),
            None => write!(f, "@{}.{:09}", self.secs, self.nanos),
        }
    }
}

/// Bytes that serialize as MessagePack `bin`.
struct Bin<'a>(&'a [u8]);

impl Serialize for Bin<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return s.collect_str(self);
        }
        s.serialize_newtype_struct(EXT, &(TIMESTAMP_EXT, Bin(&self.payload())))
    }
}

/// Owned bytes from `bin` (or a sequence of small integers).
struct BinBuf(Vec<u8>);

impl<'de> Deserialize<'de> for BinBuf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BinBuf;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<BinBuf, E> {
                Ok(BinBuf(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<BinBuf, E> {
                Ok(BinBuf(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<BinBuf, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(BinBuf(out))
            }
        }
        d.deserialize_bytes(V)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a MessagePack timestamp or RFC 3339 text")
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Timestamp, D::Error> {
                let (kind, BinBuf(data)) = <(i8, BinBuf)>::deserialize(d)?;
                if kind != TIMESTAMP_EXT {
                    return Err(de::Error::custom(format!(
                        "extension type {kind} is not a timestamp"
                    )));
                }
                let (secs, nanos) =
                    timestamp_parts(&data).ok_or_else(|| de::Error::custom("malformed timestamp"))?;
                Ok(Timestamp { secs, nanos })
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Timestamp, E> {
                Timestamp::parse(text).ok_or_else(|| E::custom(format!("{text:?} is not an RFC 3339 time")))
            }
        }
        d.deserialize_any(V)
    }
}

/// Why Flask could not read `value` back, if it could not.
///
/// Flask-Session decodes MessagePack into Python objects: map keys must be
/// hashable (strings and integers here) and the only extension it knows is
/// the timestamp. The JSON format has no NaN or infinity. Nesting is bounded
/// as for every stored value ([`MAX_DEPTH`](msgpack::MAX_DEPTH)).
pub(crate) fn flask_incompatibility(raw: &[u8], format: Format) -> Option<ValueError> {
    let checked = msgpack::walk(raw, |item, is_key| {
        if is_key && !matches!(item, Item::Str | Item::Int) {
            return Err(ValueError::MapKey(item.kind()));
        }
        match item {
            Item::Float(f) if format == Format::Json && !f.is_finite() => Err(ValueError::NonFiniteFloat),
            Item::Ext(TIMESTAMP_EXT, data) if timestamp_parts(data).is_some() => Ok(()),
            Item::Ext(kind, _) => Err(ValueError::Extension(*kind)),
            _ => Ok(()),
        }
    });
    match checked {
        Ok(len) if len == raw.len() => None,
        Err(WalkError::Refused(why)) => Some(why),
        Err(WalkError::TooDeep) => Some(ValueError::TooDeep),
        Ok(_) | Err(_) => Some(ValueError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{from_raw, to_raw};
    use rmpv::Value;

    fn raw(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, value).unwrap();
        out
    }

    #[test]
    fn timestamps_take_the_smallest_layout() {
        let cases = [
            (Timestamp::from_unix(1, 0).unwrap(), vec![0xd6, 0xff, 0, 0, 0, 1]),
            (
                Timestamp::from_unix(1_704_164_645, 678_901_000).unwrap(),
                vec![0xd7, 0xff, 0xa1, 0xdc, 0xd4, 0x20, 0x65, 0x93, 0x7d, 0x25],
            ),
        ];
        for (t, bytes) in cases {
            let out = to_raw("t", &t).unwrap();
            assert_eq!(out, bytes);
            assert_eq!(from_raw::<Timestamp>("t", &out).unwrap(), t);
        }
        let before_epoch = Timestamp::from_unix(-1, 500).unwrap();
        let out = to_raw("t", &before_epoch).unwrap();
        assert_eq!(out[..3], [0xc7, 12, 0xff]);
        assert_eq!(from_raw::<Timestamp>("t", &out).unwrap(), before_epoch);
    }

    #[test]
    fn timestamps_read_rfc3339_text() {
        let text = raw(&Value::from("2024-01-02T03:04:05.678901Z"));
        let t = from_raw::<Timestamp>("t", &text).unwrap();
        assert_eq!(t, Timestamp::from_unix(1_704_164_645, 678_901_000).unwrap());
        assert_eq!(t.to_string(), "2024-01-02T03:04:05.678901Z");
        let offset = raw(&Value::from("2024-01-02T04:04:05+01:00"));
        assert_eq!(
            from_raw::<Timestamp>("t", &offset).unwrap().unix_seconds(),
            1_704_164_645
        );
        assert!(from_raw::<Timestamp>("t", &raw(&Value::from("yesterday"))).is_err());
        assert!(from_raw::<Timestamp>("t", &raw(&Value::Ext(5, vec![0; 4]))).is_err());
    }

    #[test]
    fn system_time_round_trips() {
        for t in [
            SystemTime::UNIX_EPOCH + Duration::new(5, 7),
            SystemTime::UNIX_EPOCH - Duration::new(5, 7),
            SystemTime::UNIX_EPOCH - Duration::from_secs(5),
        ] {
            assert_eq!(SystemTime::from(Timestamp::from(t)), t);
        }
        assert_eq!(
            Timestamp::from(SystemTime::UNIX_EPOCH - Duration::new(5, 7)).subsec_nanos(),
            999_999_993
        );
    }

    #[test]
    fn refuses_what_flask_cannot_read() {
        let incompatible = |value: &Value, format| flask_incompatibility(&raw(value), format);
        let ok = Value::Map(vec![
            (Value::from(1), Value::from("int key")),
            (
                Value::from("k"),
                Value::Array(vec![Value::Ext(-1, vec![0, 0, 0, 1])]),
            ),
        ]);
        assert!(incompatible(&ok, Format::MessagePack).is_none());
        let ext = Value::Ext(3, vec![1]);
        assert!(matches!(
            incompatible(&ext, Format::MessagePack),
            Some(ValueError::Extension(3))
        ));
        let list_key = Value::Map(vec![(Value::Array(vec![]), Value::Nil)]);
        assert!(matches!(
            incompatible(&list_key, Format::MessagePack),
            Some(ValueError::MapKey("a list"))
        ));
        let nan = Value::F64(f64::NAN);
        assert!(incompatible(&nan, Format::MessagePack).is_none());
        assert!(matches!(
            incompatible(&nan, Format::Json),
            Some(ValueError::NonFiniteFloat)
        ));
        let mut deep = Value::Nil;
        for _ in 0..=msgpack::MAX_DEPTH {
            deep = Value::Array(vec![deep]);
        }
        assert!(matches!(
            incompatible(&deep, Format::MessagePack),
            Some(ValueError::TooDeep)
        ));
        let bad_timestamp = Value::Ext(-1, vec![1, 2, 3]);
        assert!(matches!(
            incompatible(&bad_timestamp, Format::MessagePack),
            Some(ValueError::Extension(-1))
        ));
    }
}
