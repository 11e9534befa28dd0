//! Walking stored MessagePack without decoding it: where a value ends,
//! whether it is well formed, and what it holds.
//!
//! Stored bytes are untrusted: whoever can write the store's keys (a Flask app
//! sharing the Redis, a compromised neighbour) chooses them. So the walk
//! allocates nothing, never recurses, rejects a length the remaining bytes
//! cannot hold before going on, and refuses nesting past [`MAX_DEPTH`], so
//! whatever decodes a checked value later (serde, the JSON codec) recurses a
//! bounded number of times.

use rmp::Marker;

/// How deep arrays and maps may nest in one session value. A deeper stored
/// value makes its record undecodable; a deeper value is refused on insert.
///
/// Far deeper than any real session value, and far inside what a recursive
/// decoder needs on a 2 MiB tokio worker stack in a debug build; it also keeps
/// every value readable in the JSON format, whose parser stops at 128 levels
/// (the record's own map is one of them).
pub(crate) const MAX_DEPTH: usize = 100;

/// One item of a value, in the order it appears.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Item<'a> {
    Nil,
    Bool,
    Int,
    Float(f64),
    Str,
    Bin,
    Ext(i8, &'a [u8]),
    /// An array header; its elements follow.
    Array,
    /// A map header; its keys and values follow, alternating.
    Map,
}

impl Item<'_> {
    /// How an error message names this kind of item.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Item::Nil => "nil",
            Item::Bool => "a boolean",
            Item::Int => "an integer",
            Item::Float(_) => "a float",
            Item::Str => "a string",
            Item::Bin => "bytes",
            Item::Ext(..) => "an extension value",
            Item::Array => "a list",
            Item::Map => "a map",
        }
    }
}

/// Why bytes are not one acceptable MessagePack value; `R` is why a
/// visitor refused an item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WalkError<R = std::convert::Infallible> {
    #[error("the value is cut short")]
    Truncated,
    #[error("the value uses the reserved marker 0xc1")]
    Reserved,
    #[error("the value nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("a string is not valid UTF-8")]
    NotUtf8,
    /// Refused by the caller's visitor.
    #[error("{0}")]
    Refused(R),
}

impl<R> WalkError<R> {
    /// The same error where a visitor's refusal can appear.
    fn widen(err: WalkError) -> WalkError<R> {
        match err {
            WalkError::Truncated => WalkError::Truncated,
            WalkError::Reserved => WalkError::Reserved,
            WalkError::TooDeep => WalkError::TooDeep,
            WalkError::NotUtf8 => WalkError::NotUtf8,
            WalkError::Refused(never) => match never {},
        }
    }
}

/// The length of the one value at the start of `bytes`, checked as
/// [`walk`] checks it.
pub(crate) fn value_len(bytes: &[u8]) -> Result<usize, WalkError> {
    match bytes.first() {
        // A value of one byte, with nothing to check: a small integer,
        // nil or a boolean, as most session values and flags are.
        Some(0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff) => Ok(1),
        _ => walk(bytes, |_, _| Ok(())),
    }
}

/// Walks the one value at the start of `bytes`, calling `visit` with each
/// item and whether it is a map key; returns how many bytes the value takes.
pub(crate) fn walk<'a, R>(
    bytes: &'a [u8],
    mut visit: impl FnMut(&Item<'a>, bool) -> Result<(), R>,
) -> Result<usize, WalkError<R>> {
    let mut rest = bytes;
    let (item, children) = read_item(&mut rest).map_err(WalkError::widen)?;
    visit(&item, false).map_err(WalkError::Refused)?;
    match children {
        // Most values are scalars: no container stack to set up.
        None | Some(0) => Ok(bytes.len() - rest.len()),
        Some(children) => walk_container(bytes, rest, (children, item == Item::Map), visit),
    }
}

/// [`walk`] past the header of a non-empty array or map, whose item count
/// and kind `first` gives; `rest` starts at its first item.
fn walk_container<'a, R>(
    bytes: &'a [u8],
    mut rest: &'a [u8],
    first: (u64, bool),
    mut visit: impl FnMut(&Item<'a>, bool) -> Result<(), R>,
) -> Result<usize, WalkError<R>> {
    // For each open array or map: the items still to read in it (two per map
    // entry, so an even count left in a map means a key comes next) and
    // whether it is a map. `pending` is the sum of the counts. Every item
    // takes at least a byte: a count the rest of the bytes cannot hold is
    // refused now, not after reading them all.
    let mut open = [(0u64, false); MAX_DEPTH];
    open[0] = first;
    let mut depth = 1;
    let mut pending: u64 = first.0;
    if pending > rest.len() as u64 {
        return Err(WalkError::Truncated);
    }
    loop {
        let is_key = open[depth - 1].1 && open[depth - 1].0 % 2 == 0;
        let (item, children) = read_item(&mut rest).map_err(WalkError::widen)?;
        visit(&item, is_key).map_err(WalkError::Refused)?;
        open[depth - 1].0 -= 1;
        pending -= 1;
        if let Some(children) = children {
            if depth == MAX_DEPTH {
                return Err(WalkError::TooDeep);
            }
            pending += children;
            if pending > rest.len() as u64 {
                return Err(WalkError::Truncated);
            }
            if children > 0 {
                open[depth] = (children, item == Item::Map);
                depth += 1;
            }
        }
        while depth > 0 && open[depth - 1].0 == 0 {
            depth -= 1;
        }
        if depth == 0 {
            return Ok(bytes.len() - rest.len());
        }
    }
}

/// Reads one item's header and payload; for an array or map, also the number
/// of items that follow it (two per map entry).
fn read_item<'a>(rest: &mut &'a [u8]) -> Result<(Item<'a>, Option<u64>), WalkError> {
    let marker = Marker::from_u8(take(rest, 1)?[0]);
    let scalar = |item| Ok((item, None));
    match marker {
        Marker::Null => scalar(Item::Nil),
        Marker::True | Marker::False => scalar(Item::Bool),
        Marker::FixPos(_) | Marker::FixNeg(_) => scalar(Item::Int),
        Marker::U8 | Marker::I8 => skip(rest, 1, Item::Int),
        Marker::U16 | Marker::I16 => skip(rest, 2, Item::Int),
        Marker::U32 | Marker::I32 => skip(rest, 4, Item::Int),
        Marker::U64 | Marker::I64 => skip(rest, 8, Item::Int),
        Marker::F32 => {
            let raw = take(rest, 4)?;
            scalar(Item::Float(f64::from(f32::from_be_bytes(array(raw)))))
        }
        Marker::F64 => scalar(Item::Float(f64::from_be_bytes(array(take(rest, 8)?)))),
        Marker::FixStr(len) => string(rest, usize::from(len)),
        Marker::Str8 => string_len(rest, 1),
        Marker::Str16 => string_len(rest, 2),
        Marker::Str32 => string_len(rest, 4),
        Marker::Bin8 => skip_len(rest, 1, Item::Bin),
        Marker::Bin16 => skip_len(rest, 2, Item::Bin),
        Marker::Bin32 => skip_len(rest, 4, Item::Bin),
        Marker::FixExt1 => ext(rest, 1),
        Marker::FixExt2 => ext(rest, 2),
        Marker::FixExt4 => ext(rest, 4),
        Marker::FixExt8 => ext(rest, 8),
        Marker::FixExt16 => ext(rest, 16),
        Marker::Ext8 => ext_len(rest, 1),
        Marker::Ext16 => ext_len(rest, 2),
        Marker::Ext32 => ext_len(rest, 4),
        Marker::FixArray(len) => Ok((Item::Array, Some(u64::from(len)))),
        Marker::Array16 => Ok((Item::Array, Some(length(rest, 2)? as u64))),
        Marker::Array32 => Ok((Item::Array, Some(length(rest, 4)? as u64))),
        Marker::FixMap(len) => Ok((Item::Map, Some(2 * u64::from(len)))),
        Marker::Map16 => Ok((Item::Map, Some(2 * length(rest, 2)? as u64))),
        Marker::Map32 => Ok((Item::Map, Some(2 * length(rest, 4)? as u64))),
        Marker::Reserved => Err(WalkError::Reserved),
    }
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], WalkError> {
    if rest.len() < n {
        return Err(WalkError::Truncated);
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

fn array<const N: usize>(raw: &[u8]) -> [u8; N] {
    raw.try_into().expect("take returned N bytes")
}

/// A big-endian length of `width` bytes.
fn length(rest: &mut &[u8], width: usize) -> Result<usize, WalkError> {
    let raw = take(rest, width)?;
    Ok(raw.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b)))
}

fn skip<'a>(rest: &mut &'a [u8], n: usize, item: Item<'a>) -> Result<(Item<'a>, Option<u64>), WalkError> {
    take(rest, n)?;
    Ok((item, None))
}

fn skip_len<'a>(
    rest: &mut &'a [u8],
    width: usize,
    item: Item<'a>,
) -> Result<(Item<'a>, Option<u64>), WalkError> {
    let len = length(rest, width)?;
    skip(rest, len, item)
}

fn string<'a>(rest: &mut &'a [u8], len: usize) -> Result<(Item<'a>, Option<u64>), WalkError> {
    std::str::from_utf8(take(rest, len)?).map_err(|_| WalkError::NotUtf8)?;
    Ok((Item::Str, None))
}

fn string_len<'a>(rest: &mut &'a [u8], width: usize) -> Result<(Item<'a>, Option<u64>), WalkError> {
    let len = length(rest, width)?;
    string(rest, len)
}

fn ext<'a>(rest: &mut &'a [u8], len: usize) -> Result<(Item<'a>, Option<u64>), WalkError> {
    let kind = take(rest, 1)?[0] as i8;
    Ok((Item::Ext(kind, take(rest, len)?), None))
}

fn ext_len<'a>(rest: &mut &'a [u8], width: usize) -> Result<(Item<'a>, Option<u64>), WalkError> {
    let len = length(rest, width)?;
    ext(rest, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn length_of(bytes: &[u8]) -> Result<usize, WalkError> {
        value_len(bytes)
    }

    #[test]
    fn the_one_byte_shortcut_agrees_with_the_walk() {
        for marker in 0..=255u8 {
            // Followed by zeros: enough bytes for any header, and valid
            // text for any string.
            let mut bytes = vec![0u8; 64];
            bytes[0] = marker;
            let walked =
                walk(&bytes, |_, _| Ok::<_, std::convert::Infallible>(())).map_err(|e| format!("{e:?}"));
            let measured = value_len(&bytes).map_err(|e| format!("{e:?}"));
            assert_eq!(measured, walked, "marker {marker:#04x}");
            assert_eq!(
                value_len(&bytes[..1]).is_ok(),
                walk(&bytes[..1], |_, _| Ok::<_, std::convert::Infallible>(())).is_ok(),
                "marker {marker:#04x} alone"
            );
        }
    }

    fn nested(depth: usize, open: u8, inner: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..depth {
            out.push(open);
            if open == 0x81 {
                out.extend_from_slice(b"\xa1k");
            }
        }
        out.extend_from_slice(inner);
        out
    }

    #[test]
    fn measures_every_kind_of_value() {
        let mut every = Vec::new();
        rmpv::encode::write_value(
            &mut every,
            &rmpv::Value::Map(vec![
                (rmpv::Value::from("a"), rmpv::Value::from(u64::MAX)),
                (rmpv::Value::from(-5), rmpv::Value::from(i64::MIN)),
                (rmpv::Value::from("f"), rmpv::Value::F32(1.5)),
                (rmpv::Value::from("d"), rmpv::Value::F64(-2.5)),
                (rmpv::Value::from("s"), rmpv::Value::from("x".repeat(300))),
                (rmpv::Value::from("b"), rmpv::Value::Binary(vec![7; 70_000])),
                (rmpv::Value::from("e"), rmpv::Value::Ext(-1, vec![0; 12])),
                (rmpv::Value::from("g"), rmpv::Value::Ext(5, vec![1; 3])),
                (
                    rmpv::Value::from("l"),
                    rmpv::Value::Array(vec![rmpv::Value::Nil, true.into(), rmpv::Value::Array(vec![])]),
                ),
            ]),
        )
        .unwrap();
        let len = every.len();
        every.extend_from_slice(b"trailing");
        assert_eq!(length_of(&every), Ok(len));
    }

    #[test]
    fn reports_items_and_map_keys_in_order() {
        // {"k": [1.5, {2: nil}]}
        let bytes = b"\x81\xa1k\x92\xcb\x3f\xf8\0\0\0\0\0\0\x81\x02\xc0";
        let mut seen = Vec::new();
        walk(bytes, |item, key| {
            seen.push((item.kind(), key));
            Ok::<_, String>(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                ("a map", false),
                ("a string", true),
                ("a list", false),
                ("a float", false),
                ("a map", false),
                ("an integer", true),
                ("nil", false),
            ]
        );
        let refused = walk(bytes, |item, _| match item {
            Item::Float(f) => Err(format!("no {f}")),
            _ => Ok(()),
        });
        assert_eq!(refused, Err(WalkError::Refused("no 1.5".into())));
    }

    #[test]
    fn huge_claimed_lengths_fail_at_once() {
        for bad in [
            &b"\xdf\xff\xff\xff\xff"[..],
            b"\xdd\xff\xff\xff\xff",
            b"\xdb\xff\xff\xff\xff",
            b"\xc6\xff\xff\xff\xff",
            b"\xc9\xff\xff\xff\xff\x01",
            b"\xde\xff\xff",
            b"\x92\x01",
            b"\x81\xa1k",
            b"\xcf\x00",
            b"",
        ] {
            assert_eq!(length_of(bad), Err(WalkError::Truncated), "{bad:?}");
        }
    }

    #[test]
    fn nesting_stops_at_the_limit() {
        for open in [0x91, 0x81] {
            assert!(length_of(&nested(MAX_DEPTH, open, b"\xc0")).is_ok());
            assert!(length_of(&nested(MAX_DEPTH - 1, open, b"\x90")).is_ok());
            assert_eq!(
                length_of(&nested(MAX_DEPTH, open, b"\x90")),
                Err(WalkError::TooDeep),
                "an empty container past the limit counts too"
            );
            assert_eq!(
                length_of(&nested(100_000, open, b"\xc0")),
                Err(WalkError::TooDeep)
            );
        }
        // Siblings do not add up: a wide value of shallow lists is fine.
        let mut wide = vec![0xdc, 0x03, 0xe8];
        for _ in 0..1000 {
            wide.extend_from_slice(&[0x91, 0x91, 0xc0]);
        }
        assert_eq!(length_of(&wide), Ok(wide.len()));
    }

    #[test]
    fn refuses_reserved_markers_and_bad_strings() {
        assert_eq!(length_of(b"\xc1"), Err(WalkError::Reserved));
        assert_eq!(length_of(b"\xa2\xc3\x28"), Err(WalkError::NotUtf8));
        assert_eq!(length_of(b"\xa2\xc3\xa9"), Ok(3));
    }
}
