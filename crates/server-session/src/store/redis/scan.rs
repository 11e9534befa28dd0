//! Walking the records for operator tools: `SCAN` (never `KEYS`) on the
//! server, or on every primary of a cluster one after the other, then each
//! page's records and expiries read with one pipeline.

use std::time::Duration;

use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Pipeline, RedisResult, Value};

use super::connection::Handle;
use crate::store::{ScanCursor, ScanPage, StoreError, StoredEntry};

/// A `MATCH` pattern for the keys that start with `prefix`.
pub(super) fn pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    pattern
}

/// A page of a walk on `handle`: on one server, the cursor is `SCAN`'s;
/// on a cluster, `slot/address/cursor`: the shard being walked (named by
/// the lowest slot its primary serves), the primary that cursor belongs to,
/// and its `SCAN` cursor. Shards are walked in slot order.
pub(super) async fn page(
    handle: Handle,
    pattern: &str,
    cursor: &ScanCursor,
    count: usize,
) -> RedisResult<Result<ScanPage, StoreError>> {
    match handle {
        Handle::Cluster(cluster) => cluster_page(cluster, pattern, cursor, count).await,
        mut handle => {
            let Some(position) = position(cursor.as_str()) else {
                return Ok(Err(not_a_cursor()));
            };
            let (next, keys): (u64, Vec<Vec<u8>>) =
                scan(pattern, position, count).query_async(&mut handle).await?;
            let mut entries = Vec::with_capacity(keys.len());
            if !keys.is_empty() {
                let values = read(&keys).query_async(&mut handle).await?;
                let redirected = sort(keys, values, &mut entries)?;
                if !redirected.is_empty() {
                    return Err(unexpected_error("a redirection from a single server"));
                }
            }
            let next = (next != 0).then(|| ScanCursor::new(next.to_string()));
            Ok(Ok(ScanPage { entries, next }))
        }
    }
}

/// A shard of a cluster: the lowest slot its primary serves, and the
/// primary's address.
type Shard = (u16, String);

async fn cluster_page(
    mut cluster: ClusterConnection,
    pattern: &str,
    cursor: &ScanCursor,
    count: usize,
) -> RedisResult<Result<ScanPage, StoreError>> {
    let shards = shards(&mut cluster).await?;
    if shards.is_empty() {
        return Ok(Err(StoreError::Unavailable(
            "the cluster names no primary".into(),
        )));
    }
    let resumed = match cursor.is_start() {
        true => Some((0, 0)),
        false => resume(&shards, cursor.as_str()),
    };
    let Some((index, position)) = resumed else {
        return Ok(Err(not_a_cursor()));
    };
    let Some((slot, address)) = shards.get(index).cloned() else {
        return Ok(Ok(ScanPage::default()));
    };
    // Routed by slot, through the client's own map of the cluster.
    let node = || SingleNodeRoutingInfo::SpecificNode(Route::new(slot, SlotAddr::Master));
    let answer = cluster
        .route_command(scan(pattern, position, count), RoutingInfo::SingleNode(node()))
        .await?;
    let (next, keys): (u64, Vec<Vec<u8>>) = redis::from_redis_value(answer)?;
    let mut entries = Vec::with_capacity(keys.len());
    if !keys.is_empty() {
        let values = cluster
            .route_pipeline(read(&keys), 0, keys.len() * 2, node())
            .await?;
        // Keys that moved during a resharding are read again where they
        // are now: a command routed by its key follows the redirection.
        for key in sort(keys, values, &mut entries)? {
            let values: Vec<Value> = read(std::slice::from_ref(&key)).query_async(&mut cluster).await?;
            let mut values = values.into_iter();
            if let (Some(ttl), Some(value)) = (values.next(), values.next())
                && let Some(entry) = entry(key, ttl, value)?
            {
                entries.push(entry);
            }
        }
    }
    let next = match (next, shards.get(index + 1)) {
        (0, None) => None,
        (0, Some((slot, address))) => Some(ScanCursor::new(format!("{slot}/{address}/0"))),
        (next, _) => Some(ScanCursor::new(format!("{slot}/{address}/{next}"))),
    };
    Ok(Ok(ScanPage { entries, next }))
}

/// Where a walk goes on, from a cluster cursor: the shard it names and its
/// position there. If another primary serves that shard now (a failover),
/// its `SCAN` starts over; if the shard's slots moved, the walk goes on
/// with the next shard from the start.
fn resume(shards: &[Shard], cursor: &str) -> Option<(usize, u64)> {
    let (slot, rest) = cursor.split_once('/')?;
    let (address, position) = rest.rsplit_once('/')?;
    let (slot, position): (u16, u64) = (slot.parse().ok()?, position.parse().ok()?);
    Some(match shards.iter().position(|(first, _)| *first == slot) {
        Some(index) if shards[index].1 == address => (index, position),
        Some(index) => (index, 0),
        None => (shards.iter().filter(|(first, _)| *first < slot).count(), 0),
    })
}

/// The shards of the cluster, in slot order, from `CLUSTER SLOTS`.
async fn shards(cluster: &mut ClusterConnection) -> RedisResult<Vec<Shard>> {
    let slots: Vec<Value> = redis::cmd("CLUSTER").arg("SLOTS").query_async(cluster).await?;
    let mut shards: Vec<Shard> = Vec::new();
    for range in slots {
        let Value::Array(fields) = range else { continue };
        let (Some(start), Some(Value::Array(primary))) = (fields.first(), fields.get(2)) else {
            continue;
        };
        let start: u16 = redis::from_redis_value_ref(start)?;
        if let [host, port, ..] = primary.as_slice() {
            let host: String = redis::from_redis_value_ref(host)?;
            let port: u16 = redis::from_redis_value_ref(port)?;
            let address = format!("{host}:{port}");
            match shards.iter_mut().find(|(_, a)| *a == address) {
                Some(shard) => shard.0 = shard.0.min(start),
                None => shards.push((start, address)),
            }
        }
    }
    shards.sort();
    Ok(shards)
}

fn position(cursor: &str) -> Option<u64> {
    match cursor {
        "" => Some(0),
        position => position.parse().ok(),
    }
}

fn not_a_cursor() -> StoreError {
    StoreError::Backend("not a cursor of this store".into())
}

fn scan(pattern: &str, position: u64, count: usize) -> redis::Cmd {
    let mut scan = redis::cmd("SCAN");
    scan.arg(position)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(count.max(1));
    scan
}

/// `PTTL` and `GET` of each key, answering errors in place (a key of
/// another type answers `GET` with `WRONGTYPE`).
pub(super) fn read(keys: &[Vec<u8>]) -> Pipeline {
    let mut pipe = redis::pipe();
    for key in keys {
        pipe.cmd("PTTL").arg(key).cmd("GET").arg(key);
    }
    pipe.ignore_errors();
    pipe
}

/// The entries of `keys` from the answers to [`read`], pushed onto
/// `entries`: a key gone meanwhile is left out, and so is one that is not
/// UTF-8 (never a key of this library). Returns the keys whose answers were
/// redirections (a cluster moving slots), to be read again.
pub(super) fn sort(
    keys: Vec<Vec<u8>>,
    values: Vec<Value>,
    entries: &mut Vec<StoredEntry>,
) -> RedisResult<Vec<Vec<u8>>> {
    if values.len() != keys.len() * 2 {
        return Err(unexpected_error("a short answer to a pipeline"));
    }
    let mut redirected = Vec::new();
    let mut values = values.into_iter();
    for key in keys {
        let (Some(ttl), Some(value)) = (values.next(), values.next()) else {
            break;
        };
        if [&ttl, &value].iter().any(|v| is_redirection(v)) {
            redirected.push(key);
        } else if let Some(entry) = entry(key, ttl, value)? {
            entries.push(entry);
        }
    }
    Ok(redirected)
}

fn is_redirection(value: &Value) -> bool {
    matches!(value, Value::ServerError(err) if matches!(err.code(), "MOVED" | "ASK" | "TRYAGAIN"))
}

fn unexpected_error(what: &'static str) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Client, "unexpected answer", what.to_owned()))
}

/// One key's entry from its `PTTL` and `GET` answers, if it still exists.
pub(super) fn entry(key: Vec<u8>, ttl: Value, value: Value) -> RedisResult<Option<StoredEntry>> {
    let Ok(key) = String::from_utf8(key) else {
        return Ok(None);
    };
    let ttl: i64 = redis::from_redis_value(ttl)?;
    let bytes = match value {
        Value::Nil => return Ok(None),
        Value::ServerError(err) if err.code() == "WRONGTYPE" => None,
        value => Some(redis::from_redis_value::<Vec<u8>>(value)?),
    };
    let ttl = match ttl {
        -2 => return Ok(None),
        ttl if ttl < 0 => None,
        ttl => Some(Duration::from_millis(ttl as u64)),
    };
    Ok(Some(StoredEntry::new(key, bytes, ttl)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_the_prefix_literally() {
        assert_eq!(pattern("session:"), "session:*");
        assert_eq!(pattern("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\*");
    }
}
