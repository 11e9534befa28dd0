//! The stored record: an ordered map from key to value, and its two codecs.
//!
//! The layout is Flask-Session 0.8's: a MessagePack map (or a compact JSON
//! object) of the session's keys in insertion order, `_permanent` first for a
//! permanent session. Engine metadata lives under reserved keys that start with
//! `_ss_`, written only when a feature needs them, so a default record is
//! byte for byte what Flask-Session writes for the same data.

use std::collections::HashSet;
use std::fmt;

use crate::msgpack;

mod json;

/// Flask's permanence flag.
pub(crate) const PERMANENT: &str = "_permanent";
/// Unix seconds at which the session was created (absolute timeout).
pub(crate) const CREATED: &str = "_ss_created";
/// A per-session lifetime override, in seconds.
pub(crate) const LIFETIME: &str = "_ss_lifetime";
/// The user the session belongs to ([`Session::login`](crate::Session::login)).
pub(crate) const USER: &str = "_ss_user";
/// Unix seconds at which the session was last seen, refreshed at most once
/// per interval (user sessions).
pub(crate) const SEEN: &str = "_ss_seen";
/// The browser's `User-Agent` at login, when client details are kept.
pub(crate) const AGENT: &str = "_ss_agent";
/// The client's network at login (an IPv4 /24 or IPv6 /48), when client
/// details are kept.
pub(crate) const ADDRESS: &str = "_ss_address";

/// A random name for one login, kept when the id is cycled: what a
/// session's handle is made from.
pub(crate) const LOGIN: &str = "_ss_login";

/// Metadata that binds a session to a user: cleared with the data, and a
/// session bound to a user is worth storing even without data.
const BINDING: [&str; 5] = [USER, SEEN, AGENT, ADDRESS, LOGIN];

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

/// The session's data, in insertion order. Each value is kept as its
/// MessagePack encoding and decoded only when a handler asks for it, so
/// loading a MessagePack record is a scan of the stored bytes, which the
/// record then keeps as they are, and writing one back copies the values as
/// they are.
#[derive(Clone, Debug, Default)]
pub(crate) struct Record {
    /// Keys (UTF-8) and values (MessagePack) that `entries` point into,
    /// after the stored bytes the record was decoded from, if any. A new
    /// value is appended; the bytes it replaces are left unused.
    buf: Vec<u8>,
    entries: Vec<Entry>,
    /// The length of the stored bytes at the start of `buf` (0 for a record
    /// that was never stored: no stored record is empty).
    source: usize,
}

/// The largest stored record read (no store keeps one this large: Redis
/// refuses values over 512 MB by default).
const MAX_STORED: usize = 1 << 30;

/// The bytes a record is given beyond what it holds, so that the values a
/// request usually sets fit without growing its buffer.
const ROOM: usize = 64;

#[derive(Clone, Copy, Debug)]
struct Entry {
    key: (u32, u32),
    value: (u32, u32),
}

impl PartialEq for Record {
    fn eq(&self, other: &Record) -> bool {
        self.entries.len() == other.entries.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl Record {
    /// An empty record with room for a new session's first values.
    pub(crate) fn new() -> Record {
        Record {
            buf: Vec::with_capacity(ROOM),
            entries: Vec::with_capacity(4),
            source: 0,
        }
    }

    /// The stored bytes this record was decoded from, whatever changed
    /// since; `None` for a record that was never stored.
    pub(crate) fn source(&self) -> Option<&[u8]> {
        (self.source > 0).then(|| &self.buf[..self.source])
    }

    /// Whether `key` is engine or Flask metadata rather than application data.
    pub(crate) fn is_metadata(key: &str) -> bool {
        is_metadata(key.as_bytes())
    }

    fn slice(&self, (start, end): (u32, u32)) -> &[u8] {
        &self.buf[start as usize..end as usize]
    }

    /// Keys (UTF-8, checked when they entered the buffer) and values.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .map(|e| (self.slice(e.key), self.slice(e.value)))
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| (e.key.1 - e.key.0) as usize == key.len() && self.slice(e.key) == key.as_bytes())
    }

    fn append(&mut self, bytes: &[u8]) -> (u32, u32) {
        let start = self.buf.len() as u32;
        self.buf.extend_from_slice(bytes);
        (start, self.buf.len() as u32)
    }

    /// The encoded value at `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&[u8]> {
        self.position(key).map(|i| self.slice(self.entries[i].value))
    }

    /// Sets `key` to the encoded `value`, keeping its position if it is
    /// already present.
    pub(crate) fn set(&mut self, key: &str, value: &[u8]) {
        let set = self.set_encoded(key, |buf| {
            buf.extend_from_slice(value);
            Ok::<_, std::convert::Infallible>(())
        });
        let Ok(()) = set;
    }

    /// Sets `key` to the value `encode` appends to the record's buffer, as
    /// [`set`](Self::set) does; when `encode` fails, nothing changes.
    pub(crate) fn set_encoded<E>(
        &mut self,
        key: &str,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.buf.len();
        let found = self.position(key);
        // A new key goes right before its value, so that the encoder copies
        // the two at once, as it does for the entries of stored bytes.
        let key = match found {
            Some(_) => (0, 0),
            None => self.append(key.as_bytes()),
        };
        let value_start = self.buf.len();
        if let Err(err) = encode(&mut self.buf) {
            self.buf.truncate(start);
            return Err(err);
        }
        let value = (value_start as u32, self.buf.len() as u32);
        match found {
            Some(i) => self.entries[i].value = value,
            None => self.entries.push(Entry { key, value }),
        }
        Ok(())
    }

    /// Removes `key`; tells whether it was there.
    pub(crate) fn remove(&mut self, key: &str) -> bool {
        self.position(key).map(|i| self.entries.remove(i)).is_some()
    }

    /// Removes every application key and the user binding; the rest of the
    /// metadata stays.
    pub(crate) fn clear_data(&mut self) {
        let entries = std::mem::take(&mut self.entries);
        self.entries = entries
            .into_iter()
            .filter(|e| {
                let key = self.slice(e.key);
                is_metadata(key) && !BINDING.iter().any(|b| b.as_bytes() == key)
            })
            .collect();
    }

    /// Whether the record holds any application key or a user. A record
    /// without either is never stored.
    pub(crate) fn has_data(&self) -> bool {
        self.iter().any(|(k, _)| !is_metadata(k) || k == USER.as_bytes())
    }

    /// Application keys, in order.
    pub(crate) fn data_keys(&self) -> impl Iterator<Item = &str> {
        self.iter()
            .filter(|(k, _)| !is_metadata(k))
            .filter_map(|(k, _)| std::str::from_utf8(k).ok())
    }

    pub(crate) fn permanent(&self) -> bool {
        self.get(PERMANENT) == Some(&[TRUE][..])
    }

    /// An unsigned integer stored under a metadata key.
    pub(crate) fn meta_u64(&self, key: &str) -> Option<u64> {
        let mut raw = self.get(key)?;
        rmp::decode::read_int(&mut raw).ok()
    }

    /// A string stored under a metadata key.
    pub(crate) fn meta_str(&self, key: &str) -> Option<&str> {
        let raw = self.get(key)?;
        let (text, rest) = rmp::decode::read_str_from_slice(raw).ok()?;
        rest.is_empty().then_some(text)
    }

    /// Encodes the record in `format`.
    pub(crate) fn encode(&self, format: Format) -> Result<Vec<u8>, CodecError> {
        match format {
            Format::MessagePack => {
                let mut out = Vec::with_capacity(self.buf.len() + 8 + 2 * self.entries.len());
                match self.entries.len() {
                    // A map of up to 15 entries has its length in its marker.
                    len @ 0..=15 => out.push(0x80 | len as u8),
                    len => {
                        let len = u32::try_from(len).map_err(|_| CodecError("too many keys".into()))?;
                        rmp::encode::write_map_len(&mut out, len).map_err(codec)?;
                    }
                }
                for entry in &self.entries {
                    let key_len = entry.key.1 - entry.key.0;
                    match key_len {
                        // A string of up to 31 bytes has its length in its marker.
                        0..=31 => out.push(0xa0 | key_len as u8),
                        _ => {
                            rmp::encode::write_str_len(&mut out, key_len).map_err(codec)?;
                        }
                    }
                    if entry.key.1 == entry.value.0 {
                        // Key and value side by side, as parsed or set.
                        out.extend_from_slice(self.slice((entry.key.0, entry.value.1)));
                    } else {
                        out.extend_from_slice(self.slice(entry.key));
                        out.extend_from_slice(self.slice(entry.value));
                    }
                }
                Ok(out)
            }
            Format::Json => json::encode(self),
        }
    }

    /// Decodes a record, trying `preferred` first and then the other format,
    /// as Flask-Session does (it never falls back to pickle, and neither does
    /// this).
    pub(crate) fn decode(bytes: &[u8], preferred: Format) -> Result<Record, CodecError> {
        Ok(Record::parse_either(bytes, preferred)?.into_record(bytes.to_vec()))
    }

    /// [`decode`](Self::decode) of bytes the record then keeps: a MessagePack
    /// record points into them, with no copy. With `room`, for a record
    /// about to change, they are first copied into a buffer with room for
    /// the new values (a fresh buffer costs less than growing this one).
    pub(crate) fn decode_owned(bytes: Vec<u8>, preferred: Format, room: bool) -> Result<Record, CodecError> {
        let parsed = Record::parse_either(&bytes, preferred)?;
        if room && bytes.capacity() - bytes.len() < ROOM {
            let mut roomy = Vec::with_capacity(bytes.len() + ROOM);
            roomy.extend_from_slice(&bytes);
            return Ok(parsed.into_record(roomy));
        }
        Ok(parsed.into_record(bytes))
    }

    /// Parses `bytes` as `preferred`, else as the other format; the error
    /// is the preferred format's.
    fn parse_either(bytes: &[u8], preferred: Format) -> Result<Parsed, CodecError> {
        Record::parse(bytes, preferred)
            .or_else(|first| Record::parse(bytes, preferred.other()).map_err(|_| first))
    }

    /// Decodes a record in whichever format it is in, and says which.
    pub(crate) fn decode_any(bytes: &[u8]) -> Result<(Record, Format), CodecError> {
        // A JSON record starts with `{`, which MessagePack reads as a
        // number: the formats cannot be mistaken for each other.
        let format = match bytes.first() {
            Some(b'{') => Format::Json,
            _ => Format::MessagePack,
        };
        let parsed = Record::parse(bytes, format)?;
        Ok((parsed.into_record(bytes.to_vec()), format))
    }

    fn parse(bytes: &[u8], format: Format) -> Result<Parsed, CodecError> {
        // Entries are 32-bit offsets into the buffer, which may hold the
        // stored bytes and their conversion side by side.
        if bytes.len() > MAX_STORED {
            return Err(CodecError("the record is larger than 1 GiB".into()));
        }
        let parsed = match format {
            Format::MessagePack => Parsed::InPlace(Record::parse_msgpack(bytes)?),
            Format::Json => Parsed::Converted(json::decode(bytes)?),
        };
        parsed.check_unique(bytes)?;
        Ok(parsed)
    }

    /// A MessagePack map with string keys, as the entries of a record that
    /// keeps `bytes`; values are measured and checked, not decoded. Nothing
    /// is sized by a length read from `bytes`.
    fn parse_msgpack(bytes: &[u8]) -> Result<Vec<Entry>, CodecError> {
        let mut rest = bytes;
        let len = match rest.split_first() {
            // A map of up to 15 entries has its length in its marker.
            Some((marker @ 0x80..=0x8f, tail)) => {
                rest = tail;
                u32::from(marker & 0x0f)
            }
            _ => rmp::decode::read_map_len(&mut rest)
                .map_err(|_| CodecError("the record is not a map".into()))?,
        };
        // An entry takes at least two bytes.
        let mut entries = Vec::with_capacity((len as usize).min(rest.len() / 2));
        let offset = |rest: &[u8]| (bytes.len() - rest.len()) as u32;
        for _ in 0..len {
            let key_len = match rest.split_first() {
                // A string of up to 31 bytes has its length in its marker.
                Some((marker @ 0xa0..=0xbf, tail)) => {
                    rest = tail;
                    usize::from(marker & 0x1f)
                }
                _ => rmp::decode::read_str_len(&mut rest)
                    .map_err(|_| CodecError("a top-level key is not a string".into()))?
                    as usize,
            };
            let key = rest
                .get(..key_len)
                .ok_or_else(|| CodecError("the record is cut short".into()))?;
            if !key.is_ascii() {
                std::str::from_utf8(key).map_err(|_| CodecError("a key is not UTF-8".into()))?;
            }
            let key_start = offset(rest);
            rest = &rest[key_len..];
            let value_start = offset(rest);
            let value_len = msgpack::value_len(rest).map_err(codec)?;
            rest = &rest[value_len..];
            entries.push(Entry {
                key: (key_start, value_start),
                value: (value_start, offset(rest)),
            });
        }
        if !rest.is_empty() {
            return Err(CodecError("trailing bytes after the MessagePack map".into()));
        }
        Ok(entries)
    }
}

/// A record read from stored bytes, before it takes them.
enum Parsed {
    /// MessagePack: the entries, which point into the stored bytes.
    InPlace(Vec<Entry>),
    /// JSON: a record of its own, with the values converted to MessagePack.
    Converted(Record),
}

impl Parsed {
    /// The record, keeping the stored `bytes` it was parsed from.
    fn into_record(self, bytes: Vec<u8>) -> Record {
        let source = bytes.len();
        match self {
            Parsed::InPlace(entries) => Record {
                buf: bytes,
                entries,
                source,
            },
            Parsed::Converted(converted) => {
                let mut buf = bytes;
                buf.reserve(converted.buf.len());
                buf.extend_from_slice(&converted.buf);
                let shift = |(start, end): (u32, u32)| (start + source as u32, end + source as u32);
                let entries = converted
                    .entries
                    .into_iter()
                    .map(|e| Entry {
                        key: shift(e.key),
                        value: shift(e.value),
                    })
                    .collect();
                Record { buf, entries, source }
            }
        }
    }

    /// Refuses a record that holds a key twice, which no writer produces and
    /// whose meaning (first or last?) readers disagree on.
    fn check_unique(&self, bytes: &[u8]) -> Result<(), CodecError> {
        let (buf, entries) = match self {
            Parsed::InPlace(entries) => (bytes, entries),
            Parsed::Converted(record) => (&record.buf[..], &record.entries),
        };
        check_unique(buf, entries)
    }
}

/// Refuses entries of `buf` that hold a key twice.
fn check_unique(buf: &[u8], entries: &[Entry]) -> Result<(), CodecError> {
    let key = |i: usize| {
        let (start, end) = entries[i].key;
        &buf[start as usize..end as usize]
    };
    let unique = match entries.len() {
        // A few comparisons beat hashing for the usual handful of keys.
        n @ 0..=16 => (1..n).all(|i| (0..i).all(|j| key(j) != key(i))),
        n => {
            let mut seen = HashSet::with_capacity(n);
            (0..n).all(|i| seen.insert(key(i)))
        }
    };
    if unique {
        Ok(())
    } else {
        Err(CodecError("a key appears twice".into()))
    }
}

fn is_metadata(key: &[u8]) -> bool {
    key == PERMANENT.as_bytes() || key.starts_with(b"_ss_")
}

/// MessagePack `true`.
pub(crate) const TRUE: u8 = 0xc3;
/// MessagePack `false`.
pub(crate) const FALSE: u8 = 0xc2;

/// The MessagePack encoding of `n`.
pub(crate) fn encode_u64(n: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(9);
    // Writing to a Vec cannot fail.
    let _ = rmp::encode::write_uint(&mut out, n);
    out
}

/// The MessagePack encoding of `text`.
pub(crate) fn encode_str(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 5);
    // Writing to a Vec cannot fail.
    let _ = rmp::encode::write_str(&mut out, text);
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pairs: &[(&str, &[u8])]) -> Record {
        let mut r = Record::default();
        for (k, v) in pairs {
            r.set(k, v);
        }
        r
    }

    #[test]
    fn set_keeps_position_and_remove_works() {
        let mut r = record(&[("a", &[1]), ("b", &[2])]);
        r.set("a", &[3]);
        r.set("c", &[4]);
        assert_eq!(r.data_keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert!(r.remove("b"));
        assert!(!r.remove("b"));
        assert_eq!(r.get("a"), Some(&[3][..]));
        assert_eq!(
            r.encode(Format::MessagePack).unwrap(),
            [0x82, 0xa1, b'a', 3, 0xa1, b'c', 4]
        );
    }

    #[test]
    fn the_encoder_writes_every_header_size_as_rmp_does() {
        // Maps of 15 and 16 entries, keys of 31 and 32 bytes, and values
        // replaced after their key (no longer beside it).
        for (entries, key_len) in [(15, 31), (16, 32), (3, 300)] {
            let keys: Vec<String> = (0..entries).map(|i| format!("{i:0>key_len$}")).collect();
            let mut r = Record::default();
            for key in &keys {
                r.set(key, &[1]);
            }
            r.set(&keys[0], &[0xa1, b'x']);
            let mut expected = Vec::new();
            rmp::encode::write_map_len(&mut expected, entries as u32).unwrap();
            for (i, key) in keys.iter().enumerate() {
                rmp::encode::write_str(&mut expected, key).unwrap();
                expected.extend_from_slice(if i == 0 { &[0xa1, b'x'][..] } else { &[1] });
            }
            let encoded = r.encode(Format::MessagePack).unwrap();
            assert_eq!(encoded, expected, "{entries} keys of {key_len} bytes");
            let decoded = Record::decode(&encoded, Format::MessagePack).unwrap();
            assert_eq!(decoded.encode(Format::MessagePack).unwrap(), expected);
        }
    }

    #[test]
    fn metadata_is_not_data() {
        let mut r = record(&[(PERMANENT, &[TRUE]), (CREATED, &encode_u64(5))]);
        assert!(!r.has_data());
        assert!(r.permanent());
        r.set("x", &[1]);
        assert!(r.has_data());
        r.clear_data();
        assert!(!r.has_data());
        assert_eq!(r.meta_u64(CREATED), Some(5));
        assert_eq!(
            record(&[(CREATED, &encode_u64(1 << 40))]).meta_u64(CREATED),
            Some(1 << 40)
        );
    }

    #[test]
    fn falls_back_to_the_other_format() {
        let r = record(&[
            (PERMANENT, &[TRUE]),
            ("user", &[0xa5, b'a', b'l', b'i', b'c', b'e']),
        ]);
        let json = r.encode(Format::Json).unwrap();
        assert_eq!(json, br#"{"_permanent":true,"user":"alice"}"#);
        assert_eq!(Record::decode(&json, Format::MessagePack).unwrap(), r);
        let mp = r.encode(Format::MessagePack).unwrap();
        assert_eq!(Record::decode(&mp, Format::Json).unwrap(), r);
        assert_eq!(
            Record::decode(&mp, Format::MessagePack)
                .unwrap()
                .encode(Format::MessagePack)
                .unwrap(),
            mp
        );
    }

    #[test]
    fn a_decoded_record_keeps_its_stored_bytes_through_changes() {
        let r = record(&[(PERMANENT, &[TRUE]), ("a", &[1]), ("b", &[2])]);
        for format in [Format::MessagePack, Format::Json] {
            let stored = r.encode(format).unwrap();
            let mut decoded = Record::decode_owned(stored.clone(), format, true).unwrap();
            assert_eq!(decoded, r);
            assert_eq!(decoded.source(), Some(&stored[..]));
            decoded.set("a", &[3]);
            decoded.set("c", &[4]);
            decoded.remove("b");
            assert_eq!(decoded.source(), Some(&stored[..]));
            assert_eq!(decoded.get("a"), Some(&[3][..]));
            assert_eq!(decoded.data_keys().collect::<Vec<_>>(), ["a", "c"]);
        }
        assert_eq!(Record::new().source(), None);
    }

    #[test]
    fn a_record_too_large_for_its_offsets_is_refused() {
        // `{"a": <binary of 1 GiB>}`, well-formed: only its size is refused.
        // Zeroed memory the refusal never reads: cheap to allocate.
        let header = [0x81, 0xa1, b'a', 0xc6, 0x40, 0, 0, 0];
        let mut huge = vec![0u8; header.len() + MAX_STORED];
        huge[..header.len()].copy_from_slice(&header);
        assert!(Record::decode_any(&huge).is_err());
        assert!(Record::decode_owned(huge, Format::MessagePack, false).is_err());
        let mut small = header[..4].to_vec();
        small.extend_from_slice(&[0, 0, 0, 2, 7, 7]);
        assert!(Record::decode_owned(small, Format::MessagePack, false).is_ok());
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
            b"\x81\xa1a",
            b"\x81\xa2a",
            b"\x81\xa1\xff\x01",
            b"\x81\xa1a\x92\x01",
        ] {
            assert!(Record::decode(bad, Format::MessagePack).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_key_twice_is_refused_in_both_formats() {
        for (bytes, format) in [
            (&b"\x82\xa1a\x01\xa1a\x02"[..], Format::MessagePack),
            (b"{\"a\":1,\"a\":2}", Format::Json),
        ] {
            let err = Record::decode(bytes, format).unwrap_err();
            assert_eq!(err.to_string(), "a key appears twice");
        }
        let mut many = Vec::new();
        rmp::encode::write_map_len(&mut many, 20_001).unwrap();
        for i in 0..20_000 {
            rmp::encode::write_str(&mut many, &format!("k{i}")).unwrap();
            many.push(0xc0);
        }
        let record = Record::decode(&many, Format::MessagePack);
        assert!(record.is_err(), "cut short");
        rmp::encode::write_str(&mut many, "k7").unwrap();
        many.push(0xc0);
        assert_eq!(
            Record::decode(&many, Format::MessagePack)
                .unwrap_err()
                .to_string(),
            "a key appears twice"
        );
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
