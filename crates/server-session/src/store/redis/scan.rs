//! Walking the records for operator tools: `SCAN` (never `KEYS`) on the
//! server, or on every primary of a cluster one after the other, then each
//! page's records and expiries read with one pipeline.

use std::time::Duration;

use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
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
/// on a cluster, `host:port/cursor`, the primary being walked and its
/// cursor, the primaries taken in address order.
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
            let entries = match keys.is_empty() {
                true => Vec::new(),
                false => {
                    let values = read(&keys).query_async(&mut handle).await?;
                    entries(keys, values)?
                }
            };
            let next = (next != 0).then(|| ScanCursor::new(next.to_string()));
            Ok(Ok(ScanPage { entries, next }))
        }
    }
}

async fn cluster_page(
    mut cluster: ClusterConnection,
    pattern: &str,
    cursor: &ScanCursor,
    count: usize,
) -> RedisResult<Result<ScanPage, StoreError>> {
    let mut primaries = primaries(&mut cluster).await?;
    primaries.sort_by_key(|(host, port)| address(host, *port));
    let resumed = match cursor.is_start() {
        true => Some((0, 0)),
        false => resume(&primaries, cursor.as_str()),
    };
    let Some((index, position)) = resumed else {
        return Ok(Err(not_a_cursor()));
    };
    let Some((host, port)) = primaries.get(index).cloned() else {
        return Ok(Ok(ScanPage::default()));
    };
    let node = || SingleNodeRoutingInfo::ByAddress {
        host: host.clone(),
        port,
    };
    let answer = cluster
        .route_command(scan(pattern, position, count), RoutingInfo::SingleNode(node()))
        .await?;
    let (next, keys): (u64, Vec<Vec<u8>>) = redis::from_redis_value(answer)?;
    let entries = match keys.is_empty() {
        true => Vec::new(),
        false => {
            let pipe = read(&keys);
            let values = cluster.route_pipeline(pipe, 0, keys.len() * 2, node()).await?;
            entries(keys, values)?
        }
    };
    let next = match (next, primaries.get(index + 1)) {
        (0, None) => None,
        (0, Some((host, port))) => Some(ScanCursor::new(format!("{}/0", address(host, *port)))),
        (next, _) => Some(ScanCursor::new(format!("{}/{next}", address(&host, port)))),
    };
    Ok(Ok(ScanPage { entries, next }))
}

fn address(host: &str, port: u16) -> String {
    format!("{host}:{port}")
}

/// Where a walk goes on, from a cluster cursor: the primary it names (or,
/// if that one left the cluster, the next in address order) and its
/// position.
fn resume(primaries: &[(String, u16)], cursor: &str) -> Option<(usize, u64)> {
    let (node, position) = cursor.rsplit_once('/')?;
    let position: u64 = position.parse().ok()?;
    let addresses = || primaries.iter().map(|(host, port)| address(host, *port));
    Some(match addresses().position(|a| a == node) {
        Some(index) => (index, position),
        None => (addresses().filter(|a| a.as_str() < node).count(), 0),
    })
}

/// The primaries of the cluster, as `CLUSTER SLOTS` names them.
async fn primaries(cluster: &mut ClusterConnection) -> RedisResult<Vec<(String, u16)>> {
    let slots: Vec<Value> = redis::cmd("CLUSTER").arg("SLOTS").query_async(cluster).await?;
    let mut primaries = Vec::new();
    for range in slots {
        let Value::Array(fields) = range else { continue };
        let Some(Value::Array(primary)) = fields.get(2) else {
            continue;
        };
        if let [host, port, ..] = primary.as_slice() {
            let host: String = redis::from_redis_value_ref(host)?;
            let port: u16 = redis::from_redis_value_ref(port)?;
            if !primaries.contains(&(host.clone(), port)) {
                primaries.push((host, port));
            }
        }
    }
    Ok(primaries)
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

/// The entries of `keys` from the answers to [`read`]: a key gone
/// meanwhile is left out, and so is one that is not UTF-8 (never a key of
/// this library).
pub(super) fn entries(keys: Vec<Vec<u8>>, values: Vec<Value>) -> RedisResult<Vec<StoredEntry>> {
    let mut entries = Vec::with_capacity(keys.len());
    let mut values = values.into_iter();
    for key in keys {
        let (Some(ttl), Some(value)) = (values.next(), values.next()) else {
            break;
        };
        let Some(entry) = entry(key, ttl, value)? else {
            continue;
        };
        entries.push(entry);
    }
    Ok(entries)
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
