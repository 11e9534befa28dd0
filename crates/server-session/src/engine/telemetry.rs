//! What the engine counts and measures, in one place. Each event is counted
//! by one call, [`Telemetry::count`]: in the atomics behind [`Metrics`] and,
//! with the `metrics` feature, in a counter of the `metrics` crate's facade,
//! so the two always agree. With the feature, store calls are also timed
//! and saved records sized. Without it, the facade's half is made of empty
//! inline functions, and nothing of it is compiled in.
//!
//! Labels hold only fixed words (a store call, an error's kind): never a
//! session id, a key or a user name.

use std::sync::atomic::{AtomicU64, Ordering};

use super::Metrics;
use crate::store::StoreError;

/// An event the engine counts; each is a field of [`Metrics`] and, with the
/// `metrics` feature, a counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// A store load that answered, with a record or without.
    Load,
    /// A record stored under a new id.
    Create,
    /// A conditional save of an existing session's record that applied.
    Save,
    /// A store delete that succeeded.
    Delete,
    /// A save that found the session changed by another request.
    Conflict,
    /// Changes dropped because the session ended meanwhile.
    Gone,
    /// A stored record that could not be decoded.
    Undecodable,
}

/// How many [`Event`]s there are.
const EVENTS: usize = 7;

/// A store call, timed with the `metrics` feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Load,
    Save,
    Delete,
    Touch,
    IndexAdd,
    IndexRemove,
    IndexMembers,
}

/// The engine's counters, and with the `metrics` feature its handles on the
/// facade.
#[derive(Default)]
pub(crate) struct Telemetry {
    counts: [AtomicU64; EVENTS],
    store_errors: AtomicU64,
    facade: facade::Facade,
}

impl Telemetry {
    /// Counts `event`.
    #[inline]
    pub(crate) fn count(&self, event: Event) {
        self.counts[event as usize].fetch_add(1, Ordering::Relaxed);
        self.facade.count(event);
    }

    /// Counts a store call that failed with `err`.
    #[inline]
    pub(crate) fn store_error(&self, err: &StoreError) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
        self.facade.store_error(err);
    }

    /// Counts a session record written (`Create` or `Save`) of `bytes` bytes.
    #[inline]
    pub(crate) fn stored(&self, event: Event, bytes: usize) {
        self.count(event);
        self.facade.record_size(bytes);
    }

    /// What has been counted so far.
    pub(crate) fn metrics(&self) -> Metrics {
        let count = |event: Event| self.counts[event as usize].load(Ordering::Relaxed);
        Metrics {
            loads: count(Event::Load),
            creates: count(Event::Create),
            saves: count(Event::Save),
            deletes: count(Event::Delete),
            conflicts: count(Event::Conflict),
            gone: count(Event::Gone),
            undecodable: count(Event::Undecodable),
            store_errors: self.store_errors.load(Ordering::Relaxed),
        }
    }
}

/// The `metrics` crate's side: handles registered on first use, so that a
/// recorder installed after the layer was built is still the one used (it
/// must be installed before the first request). The counters are registered
/// together, so that they show from zero; each histogram with its first
/// sample, so that a store call never made shows nothing.
#[cfg(feature = "metrics")]
mod facade {
    use std::future::Future;
    use std::sync::OnceLock;
    use std::time::Instant;

    use metrics::{Counter, Histogram, Unit};

    use super::{EVENTS, Event, Op, Telemetry};
    use crate::store::StoreError;

    /// The counters' names and descriptions, in [`Event`]'s order.
    pub(super) const COUNTERS: [(&str, &str); EVENTS] = [
        (
            "server_session_loads_total",
            "Session store loads that answered, with a record or without.",
        ),
        (
            "server_session_creates_total",
            "Session records stored under a new id (new sessions, cycled ids).",
        ),
        (
            "server_session_saves_total",
            "Conditional saves of existing sessions that applied.",
        ),
        ("server_session_deletes_total", "Session store deletes done."),
        (
            "server_session_conflicts_total",
            "Saves that found the session changed by another request and merged.",
        ),
        (
            "server_session_gone_total",
            "Session changes dropped because the session ended meanwhile.",
        ),
        (
            "server_session_undecodable_total",
            "Stored session records that could not be decoded.",
        ),
    ];

    pub(super) const STORE_ERRORS: &str = "server_session_store_errors_total";
    /// Every [`StoreError::kind`], the `kind` label of [`STORE_ERRORS`].
    pub(super) const KINDS: [&str; 6] = [
        "unavailable",
        "timeout",
        "not_replicated",
        "wrong_type",
        "too_large",
        "backend",
    ];

    pub(super) const CALL_SECONDS: &str = "server_session_store_call_duration_seconds";
    /// The `op` label of [`CALL_SECONDS`], in [`Op`]'s order.
    pub(super) const OPS: [&str; 7] = [
        "load",
        "save",
        "delete",
        "touch",
        "index_add",
        "index_remove",
        "index_members",
    ];

    pub(super) const RECORD_BYTES: &str = "server_session_record_size_bytes";

    #[derive(Default)]
    pub(super) struct Facade {
        counters: OnceLock<Counters>,
        calls: [OnceLock<Histogram>; OPS.len()],
        record_bytes: OnceLock<Histogram>,
    }

    struct Counters {
        events: [Counter; EVENTS],
        store_errors: [Counter; KINDS.len()],
    }

    impl Counters {
        fn register() -> Counters {
            for (name, help) in COUNTERS {
                metrics::describe_counter!(name, Unit::Count, help);
            }
            metrics::describe_counter!(
                STORE_ERRORS,
                Unit::Count,
                "Session store calls that failed, by kind of error."
            );
            metrics::describe_histogram!(
                CALL_SECONDS,
                Unit::Seconds,
                "Session store call latency, by operation."
            );
            metrics::describe_histogram!(
                RECORD_BYTES,
                Unit::Bytes,
                "Size of the session records stored (creates and saves)."
            );
            Counters {
                events: COUNTERS.map(|(name, _)| metrics::counter!(name)),
                store_errors: KINDS.map(|kind| metrics::counter!(STORE_ERRORS, "kind" => kind)),
            }
        }
    }

    impl Facade {
        fn counters(&self) -> &Counters {
            self.counters.get_or_init(Counters::register)
        }

        #[inline]
        pub(super) fn count(&self, event: Event) {
            self.counters().events[event as usize].increment(1);
        }

        pub(super) fn store_error(&self, err: &StoreError) {
            let kind = err.kind();
            match KINDS.iter().position(|k| *k == kind) {
                Some(i) => self.counters().store_errors[i].increment(1),
                // A kind this list lacks: registered now.
                None => metrics::counter!(STORE_ERRORS, "kind" => kind).increment(1),
            }
        }

        #[inline]
        pub(super) fn record_size(&self, bytes: usize) {
            let histogram = self
                .record_bytes
                .get_or_init(|| metrics::histogram!(RECORD_BYTES));
            histogram.record(bytes as f64);
        }

        #[inline]
        fn call_took(&self, op: Op, start: Instant) {
            let histogram = self.calls[op as usize]
                .get_or_init(|| metrics::histogram!(CALL_SECONDS, "op" => OPS[op as usize]));
            histogram.record(start.elapsed().as_secs_f64());
        }
    }

    impl Telemetry {
        /// `call`, a store call, timed as `op` (from now: await it at once).
        /// A plain future, not an `async fn`, so that it adds no state of
        /// its own to the request's.
        pub(crate) fn timed<F: Future>(&self, op: Op, call: F) -> impl Future<Output = F::Output> {
            use futures_util::FutureExt as _;
            let start = Instant::now();
            call.map(move |output| {
                self.facade.call_took(op, start);
                output
            })
        }
    }
}

/// Without the `metrics` feature: nothing.
#[cfg(not(feature = "metrics"))]
mod facade {
    use super::{Event, Op, Telemetry};
    use crate::store::StoreError;

    #[derive(Default)]
    pub(super) struct Facade;

    impl Facade {
        #[inline(always)]
        pub(super) fn count(&self, _: Event) {}

        #[inline(always)]
        pub(super) fn store_error(&self, _: &StoreError) {}

        #[inline(always)]
        pub(super) fn record_size(&self, _: usize) {}
    }

    impl Telemetry {
        /// `call`, a store call, as it is: nothing is timed.
        #[inline(always)]
        pub(crate) fn timed<F>(&self, _: Op, call: F) -> F {
            call
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_follow_the_events() {
        let telemetry = Telemetry::default();
        telemetry.count(Event::Load);
        telemetry.count(Event::Load);
        telemetry.stored(Event::Create, 10);
        telemetry.stored(Event::Save, 12);
        telemetry.count(Event::Delete);
        telemetry.count(Event::Conflict);
        telemetry.count(Event::Gone);
        telemetry.count(Event::Undecodable);
        telemetry.store_error(&StoreError::WrongType);
        let m = telemetry.metrics();
        assert_eq!(
            (
                m.loads,
                m.creates,
                m.saves,
                m.deletes,
                m.conflicts,
                m.gone,
                m.undecodable,
                m.store_errors
            ),
            (2, 1, 1, 1, 1, 1, 1, 1)
        );
    }

    #[test]
    fn every_store_error_has_a_kind() {
        let io = || Box::new(std::io::Error::other("down")) as crate::store::BoxError;
        let errors = [
            (StoreError::Unavailable(io()), "unavailable"),
            (StoreError::Timeout(std::time::Duration::from_secs(1)), "timeout"),
            (
                StoreError::NotReplicated {
                    acknowledged: 0,
                    required: 1,
                },
                "not_replicated",
            ),
            (StoreError::WrongType, "wrong_type"),
            (StoreError::TooLarge { limit: 1 }, "too_large"),
            (StoreError::Backend(io()), "backend"),
        ];
        for (err, kind) in &errors {
            assert_eq!(err.kind(), *kind);
        }
        #[cfg(feature = "metrics")]
        assert_eq!(
            facade::KINDS.to_vec(),
            errors.iter().map(|(_, kind)| *kind).collect::<Vec<_>>(),
            "every kind has its counter, registered up front"
        );
    }

    #[cfg(feature = "metrics")]
    #[test]
    fn names_follow_prometheus_conventions() {
        for (name, _) in facade::COUNTERS {
            assert!(
                name.starts_with("server_session_") && name.ends_with("_total"),
                "{name}"
            );
        }
        assert!(facade::STORE_ERRORS.ends_with("_total"));
        assert!(
            facade::CALL_SECONDS.starts_with("server_session_") && facade::CALL_SECONDS.ends_with("_seconds")
        );
        assert!(
            facade::RECORD_BYTES.starts_with("server_session_") && facade::RECORD_BYTES.ends_with("_bytes")
        );
        assert_eq!(facade::OPS.len(), Op::IndexMembers as usize + 1);
        assert_eq!(facade::OPS[Op::IndexMembers as usize], "index_members");
        assert_eq!(facade::COUNTERS.len(), Event::Undecodable as usize + 1);
    }
}
