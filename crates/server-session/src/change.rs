//! The change log of a request: what a handler did to its session, kept so
//! that the engine can replay it on the record another request stored.
//!
//! The log keeps its keys and values in one buffer of its own and its
//! entries in another, so a request's changes share two buffers rather than
//! taking allocations of their own, and a value can be encoded straight into
//! the log.

use std::ops::Range;

use crate::error::SessionError;
use crate::record::Record;

/// A closure of [`Session::update`](crate::Session::update), kept so it can
/// be re-applied: from the key and its encoded current value, it appends the
/// encoded new one to the buffer it is given.
pub(crate) type Updater =
    Box<dyn Fn(&str, Option<&[u8]>, &mut Vec<u8>) -> Result<(), SessionError> + Send + Sync>;

/// One change to a session, as it is made. Keys are a handler's (checked not
/// to be reserved) or the engine's own metadata keys.
pub(crate) enum Change<'a> {
    Set(&'a str, &'a [u8]),
    Remove(&'a str),
    Update(&'a str, Updater),
    Clear,
}

/// A change as the log keeps it: keys and values are ranges of its buffer.
enum Logged {
    Set(Range<usize>, Range<usize>),
    Remove(Range<usize>),
    Update(Range<usize>, Updater),
    Clear,
}

/// What is kept of a change besides its effect on the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keep {
    /// Logged, to be replayed on another request's version of the session.
    Log,
    /// Only noted as a change to save: a session that was never stored has
    /// no other version to replay it on.
    Note,
    /// Nothing: the session is never saved.
    Drop,
}

/// The changes a request made to its session, in order.
#[derive(Default)]
pub(crate) struct ChangeLog {
    /// The keys (UTF-8) and values (MessagePack) the entries point into.
    bytes: Vec<u8>,
    entries: Vec<Logged>,
    /// Changes were made with [`Keep::Note`].
    noted: bool,
}

impl ChangeLog {
    /// Whether no change is kept, logged or noted.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty() && !self.noted
    }

    /// Forgets every change, keeping the memory for the next ones.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.entries.clear();
        self.noted = false;
    }

    /// Whether a change made with `keep` is to be logged; notes it when it
    /// is only noted.
    fn logs(&mut self, keep: Keep) -> bool {
        self.noted |= keep == Keep::Note;
        keep == Keep::Log
    }

    /// Gives the buffer room for a few keys and values on first use, in one
    /// allocation rather than one per doubling.
    fn make_room(&mut self) {
        /// Enough for the handful of short keys and values most requests set.
        const ROOM: usize = 64;
        if self.bytes.capacity() == 0 {
            self.bytes.reserve(ROOM);
        }
    }

    fn push(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }

    fn key(&self, range: &Range<usize>) -> &str {
        std::str::from_utf8(&self.bytes[range.clone()]).expect("keys enter the log as text")
    }

    /// Applies `change` to `record`, and keeps it as `keep` says.
    pub(crate) fn apply(
        &mut self,
        change: Change<'_>,
        record: &mut Record,
        keep: Keep,
    ) -> Result<(), SessionError> {
        let logged = match change {
            Change::Set(key, value) => {
                self.set(key, value, record, keep);
                return Ok(());
            }
            Change::Remove(key) => {
                record.remove(key);
                if !self.logs(keep) {
                    return Ok(());
                }
                self.make_room();
                Logged::Remove(self.push(key.as_bytes()))
            }
            Change::Update(key, f) => {
                // The log's buffer is the scratch space of the new value.
                self.make_room();
                update(key, &f, record, &mut self.bytes)?;
                if !self.logs(keep) {
                    return Ok(());
                }
                Logged::Update(self.push(key.as_bytes()), f)
            }
            Change::Clear => {
                record.clear_data();
                if !self.logs(keep) {
                    return Ok(());
                }
                Logged::Clear
            }
        };
        self.entries.push(logged);
        Ok(())
    }

    /// Sets `key` in `record` to the encoded `value`, and keeps the change
    /// as `keep` says.
    pub(crate) fn set(&mut self, key: &str, value: &[u8], record: &mut Record, keep: Keep) {
        record.set(key, value);
        if self.logs(keep) {
            self.make_room();
            let logged = Logged::Set(self.push(key.as_bytes()), self.push(value));
            self.entries.push(logged);
        }
    }

    /// Sets `key` in `record` to the value `encode` appends to the buffer it
    /// is given: encoded straight into the log when the change is logged,
    /// else straight into the record. Nothing changes when `encode` fails.
    pub(crate) fn set_encoded(
        &mut self,
        key: &str,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), SessionError>,
        record: &mut Record,
        keep: Keep,
    ) -> Result<(), SessionError> {
        if keep != Keep::Log {
            record.set_encoded(key, encode)?;
            self.logs(keep);
            return Ok(());
        }
        self.make_room();
        let start = self.bytes.len();
        if let Err(err) = encode(&mut self.bytes) {
            self.bytes.truncate(start);
            return Err(err);
        }
        let value = start..self.bytes.len();
        record.set(key, &self.bytes[value.clone()]);
        let key = self.push(key.as_bytes());
        self.entries.push(Logged::Set(key, value));
        Ok(())
    }

    /// Applies every logged change again, in order, to `record`: the version
    /// of the session another request stored.
    pub(crate) fn replay(&self, record: &mut Record) -> Result<(), SessionError> {
        let mut scratch = Vec::new();
        for entry in &self.entries {
            match entry {
                Logged::Set(key, value) => record.set(self.key(key), &self.bytes[value.clone()]),
                Logged::Remove(key) => {
                    record.remove(self.key(key));
                }
                Logged::Update(key, f) => {
                    update(self.key(key), f, record, &mut scratch)?;
                    scratch.clear();
                }
                Logged::Clear => record.clear_data(),
            }
        }
        Ok(())
    }

    /// Whether a logged change names a key that passes `pick` (a clear names
    /// none).
    pub(crate) fn names(&self, pick: impl Fn(&str) -> bool) -> bool {
        self.entries.iter().any(|entry| match entry {
            Logged::Set(key, _) | Logged::Remove(key) | Logged::Update(key, _) => pick(self.key(key)),
            Logged::Clear => false,
        })
    }
}

/// Runs the update `f` of `key` on `record`, with the new value written at
/// the end of `scratch` and removed from it again.
fn update(key: &str, f: &Updater, record: &mut Record, scratch: &mut Vec<u8>) -> Result<(), SessionError> {
    let start = scratch.len();
    let updated = f(key, record.get(key), scratch);
    if updated.is_ok() {
        record.set(key, &scratch[start..]);
    }
    scratch.truncate(start);
    updated
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(byte: u8) -> impl FnOnce(&mut Vec<u8>) -> Result<(), SessionError> {
        move |out| {
            out.push(byte);
            Ok(())
        }
    }

    /// An encoder that writes `byte`, then fails.
    fn fail_after(byte: u8) -> impl FnOnce(&mut Vec<u8>) -> Result<(), SessionError> {
        move |out| {
            out.push(byte);
            Err(SessionError::ReservedKey("c".into()))
        }
    }

    fn add(n: u8) -> Updater {
        Box::new(move |_, current, out| {
            out.push(current.map_or(0, |c| c[0]) + n);
            Ok(())
        })
    }

    #[test]
    fn a_replay_applies_the_logged_changes_in_order() {
        let mut log = ChangeLog::default();
        let mut mine = Record::new();
        log.apply(Change::Set("a", &[1]), &mut mine, Keep::Log).unwrap();
        log.apply(Change::Update("n", add(2)), &mut mine, Keep::Log)
            .unwrap();
        log.set_encoded("b", push(7), &mut mine, Keep::Log).unwrap();
        log.apply(Change::Remove("a"), &mut mine, Keep::Log).unwrap();
        assert_eq!(mine.get("n"), Some(&[2][..]));

        let mut theirs = Record::new();
        theirs.set("n", &[40]);
        theirs.set("a", &[9]);
        log.replay(&mut theirs).unwrap();
        assert_eq!(theirs.get("n"), Some(&[42][..]));
        assert_eq!(theirs.get("b"), Some(&[7][..]));
        assert_eq!(theirs.get("a"), None);
        assert!(log.names(|k| k == "b"));
        assert!(!log.names(|k| k == "c"));
    }

    #[test]
    fn unkept_and_failed_changes_leave_the_log_alone() {
        let mut log = ChangeLog::default();
        let mut record = Record::new();
        log.apply(Change::Set("a", &[1]), &mut record, Keep::Drop)
            .unwrap();
        log.set_encoded("b", push(2), &mut record, Keep::Drop).unwrap();
        let failed = log.set_encoded("c", fail_after(3), &mut record, Keep::Log);
        assert!(failed.is_err());
        assert!(log.is_empty());
        assert!(log.bytes.is_empty());
        assert_eq!(record.get("a"), Some(&[1][..]));
        assert_eq!(record.get("b"), Some(&[2][..]));
        assert_eq!(record.get("c"), None);
    }

    #[test]
    fn noted_changes_are_saved_but_not_logged() {
        let mut log = ChangeLog::default();
        let mut record = Record::new();
        log.set_encoded("a", push(1), &mut record, Keep::Note).unwrap();
        log.apply(Change::Update("n", add(2)), &mut record, Keep::Note)
            .unwrap();
        let failed = log.set_encoded("c", fail_after(3), &mut record, Keep::Note);
        assert!(failed.is_err());
        assert!(!log.is_empty());
        assert!(log.entries.is_empty());
        assert!(!log.names(|_| true));
        assert_eq!(record.get("a"), Some(&[1][..]));
        assert_eq!(record.get("n"), Some(&[2][..]));
        assert_eq!(record.get("c"), None);
        log.clear();
        assert!(log.is_empty());
    }
}
