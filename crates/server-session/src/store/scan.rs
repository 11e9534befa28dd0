//! Walking a store's records, for operator tools: where a walk stands, what
//! one page of it holds, and one stored record as it is.

use std::fmt;
use std::time::Duration;

/// Where a walk over a store's records stands
/// ([`StoreAdmin::scan`](super::StoreAdmin::scan)): the start, or a
/// position only the store that handed it out understands.
///
/// ```
/// use server_session::store::ScanCursor;
///
/// let start = ScanCursor::start();
/// assert!(start.is_start());
/// assert_eq!(ScanCursor::new("42").as_str(), "42");
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ScanCursor(String);

impl ScanCursor {
    /// The start of a walk.
    pub fn start() -> Self {
        ScanCursor(String::new())
    }

    /// A position a store writes as `position` (never empty: that is the
    /// start).
    pub fn new(position: impl Into<String>) -> Self {
        ScanCursor(position.into())
    }

    /// Whether this is the start of a walk.
    pub fn is_start(&self) -> bool {
        self.0.is_empty()
    }

    /// The position as the store wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ScanCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScanCursor({:?})", self.0)
    }
}

/// One page of a walk: some records, and where the walk goes on (`None`
/// once it is over). A page may be empty while the walk goes on.
#[derive(Clone, Debug, Default)]
pub struct ScanPage {
    /// The records of this page.
    pub entries: Vec<StoredEntry>,
    /// The cursor of the next page, if any.
    pub next: Option<ScanCursor>,
}

/// A record as the store holds it: its key, its bytes and its time to live.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// The full key, prefix included.
    pub key: String,
    /// The stored bytes; `None` when the key holds something other than a
    /// record (on Redis, a key of another type).
    pub bytes: Option<Vec<u8>>,
    /// The time left before the record expires; `None` when it never does.
    pub ttl: Option<Duration>,
}

impl StoredEntry {
    /// A record at `key`.
    pub fn new(key: impl Into<String>, bytes: Option<Vec<u8>>, ttl: Option<Duration>) -> Self {
        StoredEntry {
            key: key.into(),
            bytes,
            ttl,
        }
    }
}

impl fmt::Debug for StoredEntry {
    // Neither the key (which holds a session id) nor the bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredEntry")
            .field("bytes", &self.bytes.as_ref().map(Vec::len))
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}
