//! `stats`: one walk over the records, summed up.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server_session::Format;
use server_session::admin::{Admin, Problem};

use crate::output::{self, Output};
use crate::{Failure, Outcome};

/// Upper bounds of the time-to-expiry buckets, and their names.
const TTL_BUCKETS: [(Duration, &str); 5] = [
    (Duration::from_secs(60), "under_1m"),
    (Duration::from_secs(3600), "under_1h"),
    (Duration::from_secs(86400), "under_1d"),
    (Duration::from_secs(7 * 86400), "under_7d"),
    (Duration::from_secs(31 * 86400), "under_31d"),
];

#[derive(Default)]
struct Tally {
    records: u64,
    sessions: u64,
    ended: u64,
    msgpack: u64,
    json: u64,
    undecodable: u64,
    wrong_type: u64,
    oversized: u64,
    users: HashSet<String>,
    bound: u64,
    sizes: Vec<usize>,
    /// Per bucket of [`TTL_BUCKETS`], then "longer" and "never".
    ttl: [u64; TTL_BUCKETS.len() + 2],
}

impl Tally {
    fn ttl_bucket(&mut self, ttl: Option<Duration>) {
        let index = match ttl {
            None => TTL_BUCKETS.len() + 1,
            Some(ttl) => TTL_BUCKETS
                .iter()
                .position(|(bound, _)| ttl < *bound)
                .unwrap_or(TTL_BUCKETS.len()),
        };
        self.ttl[index] += 1;
    }

    fn ttl_json(&self) -> Value {
        let mut buckets = serde_json::Map::new();
        for (i, (_, name)) in TTL_BUCKETS.iter().enumerate() {
            buckets.insert((*name).into(), self.ttl[i].into());
        }
        buckets.insert("longer".into(), self.ttl[TTL_BUCKETS.len()].into());
        buckets.insert("never".into(), self.ttl[TTL_BUCKETS.len() + 1].into());
        Value::Object(buckets)
    }
}

/// The size at quantile `q` of sorted sizes.
fn quantile(sorted: &[usize], q: f64) -> usize {
    match sorted.len() {
        0 => 0,
        n => sorted[((n as f64 * q).ceil() as usize).clamp(1, n) - 1],
    }
}

pub async fn run(admin: &Admin, out: &Output, batch: usize) -> Result<Outcome, Failure> {
    let started = Instant::now();
    let mut tally = Tally::default();
    output::walk(admin, out, batch, "counting", |entry| {
        let examined = admin.examine(&entry);
        tally.records += 1;
        match &examined.problem {
            Some(Problem::WrongType) => tally.wrong_type += 1,
            Some(Problem::Undecodable(_)) => tally.undecodable += 1,
            Some(Problem::Oversized { .. }) => tally.oversized += 1,
            Some(_) | None => {}
        }
        match examined.format {
            Some(Format::Json) => tally.json += 1,
            Some(_) => tally.msgpack += 1,
            None => {}
        }
        if examined.problem.is_none() || matches!(examined.problem, Some(Problem::Oversized { .. })) {
            if examined.ended {
                tally.ended += 1;
                return;
            }
            tally.sessions += 1;
            tally.sizes.push(examined.size);
            tally.ttl_bucket(entry.ttl);
            if let Some(user) = examined.user {
                tally.bound += 1;
                tally.users.insert(user);
            }
        }
    })
    .await?;
    tally.sizes.sort_unstable();
    let elapsed = started.elapsed();
    let sizes = &tally.sizes;
    let (p50, p99, max) = (
        quantile(sizes, 0.5),
        quantile(sizes, 0.99),
        sizes.last().copied().unwrap_or(0),
    );
    let report = json!({
        "records": tally.records,
        "sessions": tally.sessions,
        "ended": tally.ended,
        "users": tally.users.len(),
        "sessions_with_user": tally.bound,
        "size_bytes": { "p50": p50, "p99": p99, "max": max },
        "ttl": tally.ttl_json(),
        "format": { "msgpack": tally.msgpack, "json": tally.json },
        "undecodable": tally.undecodable,
        "wrong_type": tally.wrong_type,
        "oversized": tally.oversized,
        "seconds": elapsed.as_secs_f64(),
    });
    out.emit(&report, || {
        let names = TTL_BUCKETS
            .iter()
            .map(|(_, name)| *name)
            .chain(["longer", "never"]);
        let ttl: Vec<String> = names
            .zip(tally.ttl)
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        format!(
            "records      {}\n\
             sessions     {} ({} bound to {} users), {} ended\n\
             size         p50 {p50} B, p99 {p99} B, max {max} B\n\
             time left    {}\n\
             format       MessagePack {}, JSON {}\n\
             unusable     {} undecodable, {} oversized, {} of another type\n\
             walked in    {:.2} s",
            tally.records,
            tally.sessions,
            tally.bound,
            tally.users.len(),
            tally.ended,
            ttl.join(", "),
            tally.msgpack,
            tally.json,
            tally.undecodable,
            tally.oversized,
            tally.wrong_type,
            elapsed.as_secs_f64(),
        )
    })?;
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let sizes: Vec<usize> = (1..=100).collect();
        assert_eq!(quantile(&sizes, 0.5), 50);
        assert_eq!(quantile(&sizes, 0.99), 99);
        assert_eq!(quantile(&[], 0.5), 0);
        assert_eq!(quantile(&[7], 0.99), 7);
    }
}
