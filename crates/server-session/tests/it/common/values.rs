//! One value of every type Flask-Session stores, by the names the fixtures
//! and the Flask test app use: how the Rust side writes each, and what it
//! reads back from what Flask stored.

// 3.14 is the fixtures' value, not an approximation of pi.
#![allow(clippy::approx_constant)]

use std::collections::BTreeMap;

use rmpv::Value;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use server_session::{Format, Session, SessionError, Timestamp};

use super::frameworks::Routes;

#[derive(Serialize, Deserialize, PartialEq, Debug)]
pub struct Nested {
    a: Inner,
    z: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Inner {
    b: (u8, u8, Leaf),
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Leaf {
    c: Option<String>,
}

pub fn nested() -> Nested {
    Nested {
        a: Inner {
            b: (1, 2, Leaf { c: None }),
        },
        z: "last".into(),
    }
}

/// 2024-01-02T03:04:05.678901Z, the fixtures' aware datetime.
pub fn datetime_utc() -> Timestamp {
    Timestamp::from_unix(1_704_164_645, 678_901_000).unwrap()
}

pub fn list() -> Vec<Value> {
    vec![1.into(), "two".into(), 3.0f64.into(), Value::Nil, true.into()]
}

pub const BYTES: &[u8] = b"\x00\x01binary\xff";

/// Stores the Rust counterpart of the value `name`; false for an unknown name.
pub async fn put(s: &Session, name: &str) -> Result<bool, SessionError> {
    match name {
        "str" => s.insert(name, "hello").await?,
        "str_unicode" => s.insert(name, "héllo ✓ 😀").await?,
        "str_empty" => s.insert(name, "").await?,
        "int" => s.insert(name, &42u8).await?,
        "int_negative" => s.insert(name, &-7i64).await?,
        "int_big_2pow40" => s.insert(name, &(1u64 << 40)).await?,
        "int_2pow63_minus1" => s.insert(name, &i64::MAX).await?,
        "int_u64_max" => s.insert(name, &u64::MAX).await?,
        "int_i64_min" => s.insert(name, &i64::MIN).await?,
        "float" => s.insert(name, &3.14f64).await?,
        "float_1e100" => s.insert(name, &1e100f64).await?,
        "bool_true" => s.insert(name, &true).await?,
        "bool_false" => s.insert(name, &false).await?,
        "none" => s.insert(name, &None::<u8>).await?,
        "list" => s.insert(name, &list()).await?,
        "tuple" | "set" => s.insert(name, &(1, 2)).await?,
        "nested_dict" => s.insert(name, &nested()).await?,
        "dict_int_keys" => s.insert(name, &BTreeMap::from([(1, "a"), (2, "b")])).await?,
        "bytes" => s.insert(name, &ByteBuf::from(BYTES)).await?,
        "datetime_utc" => s.insert(name, &datetime_utc()).await?,
        "datetime_naive" => s.insert(name, "2024-01-02T03:04:05.678901").await?,
        "date" => s.insert(name, "2024-01-02").await?,
        "uuid" => s.insert(name, "12345678-1234-5678-1234-567812345678").await?,
        "decimal" => s.insert(name, "1.10").await?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// Whether the session holds value `name`, read as its natural Rust type,
/// as it comes out of a record in `format`: JSON has no bytes (Flask writes
/// base64 text) and only string map keys.
pub async fn holds(s: &Session, name: &str, format: Format) -> Result<bool, SessionError> {
    let json = format == Format::Json;
    Ok(match name {
        "str" => s.get::<String>(name).await? == Some("hello".into()),
        "str_unicode" => s.get::<String>(name).await? == Some("héllo ✓ 😀".into()),
        "str_empty" => s.get::<String>(name).await? == Some(String::new()),
        "int" => s.get::<u8>(name).await? == Some(42),
        "int_negative" => s.get::<i32>(name).await? == Some(-7),
        "int_big_2pow40" => s.get::<u64>(name).await? == Some(1 << 40),
        "int_2pow63_minus1" => s.get::<i64>(name).await? == Some(i64::MAX),
        "int_u64_max" => s.get::<u64>(name).await? == Some(u64::MAX),
        "int_i64_min" => s.get::<i64>(name).await? == Some(i64::MIN),
        "float" => s.get::<f64>(name).await? == Some(3.14),
        "float_1e100" => s.get::<f64>(name).await? == Some(1e100),
        "bool_true" => s.get::<bool>(name).await? == Some(true),
        "bool_false" => s.get::<bool>(name).await? == Some(false),
        "none" => s.contains_key(name).await? && s.get::<Option<u8>>(name).await? == Some(None),
        "list" => s.get::<Vec<Value>>(name).await? == Some(list()),
        "tuple" | "set" => s.get::<(u8, u8)>(name).await? == Some((1, 2)),
        "nested_dict" => s.get::<Nested>(name).await? == Some(nested()),
        "dict_int_keys" if json => {
            s.get::<BTreeMap<String, String>>(name).await?
                == Some(BTreeMap::from([
                    ("1".into(), "a".into()),
                    ("2".into(), "b".into()),
                ]))
        }
        "dict_int_keys" => {
            s.get::<BTreeMap<u8, String>>(name).await?
                == Some(BTreeMap::from([(1, "a".into()), (2, "b".into())]))
        }
        "bytes" if json => s.get::<String>(name).await?.as_deref() == Some("AAFiaW5hcnn/"),
        "bytes" => s.get::<ByteBuf>(name).await? == Some(ByteBuf::from(BYTES)),
        "datetime_utc" => s.get::<Timestamp>(name).await? == Some(datetime_utc()),
        "datetime_naive" => s.get::<String>(name).await?.as_deref() == Some("2024-01-02T03:04:05.678901"),
        "date" => s.get::<String>(name).await?.as_deref() == Some("2024-01-02"),
        "uuid" => s.get::<String>(name).await?.as_deref() == Some("12345678-1234-5678-1234-567812345678"),
        "decimal" => s.get::<String>(name).await?.as_deref() == Some("1.10"),
        _ => false,
    })
}

/// Routes over the table: `/put/{name}` and `/holds/{name}` answer `true`
/// or `false`; `/keys` lists the session's keys.
pub fn routes(format: Format) -> Routes {
    Routes::new()
        .route("/put/*", |s: Session, name| async move {
            put(&s, &name).await.map(|ok| ok.to_string())
        })
        .route("/holds/*", move |s: Session, name| async move {
            holds(&s, &name, format).await.map(|ok| ok.to_string())
        })
        .route("/keys", |s: Session, _| async move {
            s.keys().await.map(|k| k.join(","))
        })
}
