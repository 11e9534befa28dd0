//! Operator access to the stored sessions, outside requests: walk them,
//! look at one, end one or all of a user's, find and remove the records
//! nobody can use, and copy records as they are. The `server-session`
//! command line tool is built on this.
//!
//! Nothing here logs or returns a session id unless asked for a key: a
//! session is named by its [`SessionHandle`].
//!
//! ```
//! use server_session::admin::Admin;
//! use server_session::store::ScanCursor;
//! use server_session::{MemoryStore, SessionConfig};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let admin = Admin::new(MemoryStore::new(), SessionConfig::default())?;
//! let mut cursor = Some(ScanCursor::start());
//! while let Some(at) = cursor {
//!     let page = admin.scan(&at, 1000).await?;
//!     for entry in &page.entries {
//!         let examined = admin.examine(entry);
//!         println!("{} {} bytes", examined.handle.as_ref().map_or("-", |h| h.as_str()), examined.size);
//!     }
//!     cursor = page.next;
//! }
//! # Ok::<_, Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value as Json};

use crate::config::{ConfigError, SessionConfig, UserSessions};
use crate::engine::{Engine, UserIndex, configured};
use crate::error::SessionError;
use crate::record::{self, Format, Record};
use crate::sessions::{Sessions, Users};
use crate::store::{DynAdmin, ScanCursor, ScanPage, SessionIndex, StoreAdmin, StoredEntry};
use crate::users::SessionHandle;

/// The stored sessions of one configuration (its store, key prefix,
/// secret and record limit), for operator tools.
#[derive(Clone)]
pub struct Admin {
    sessions: Sessions,
    walk: Arc<dyn DynAdmin>,
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

/// What is wrong with a stored record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The key holds something other than a record (on Redis, a key of
    /// another type).
    WrongType,
    /// The bytes are neither a MessagePack nor a JSON record.
    Undecodable(String),
    /// The record is larger than the configured limit
    /// ([`SessionConfig::max_record_size`]): no request can save it back.
    Oversized {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::WrongType => f.write_str("not a record (a key of another type)"),
            Problem::Undecodable(why) => write!(f, "undecodable: {why}"),
            Problem::Oversized { size, limit } => write!(f, "{size} bytes, over the limit of {limit}"),
        }
    }
}

/// A stored record, decoded for a person to read ([`Admin::examine`]).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Examined {
    /// The record's size in bytes.
    pub size: usize,
    /// Its format, when it decodes.
    pub format: Option<Format>,
    /// What is wrong with it, if anything.
    pub problem: Option<Problem>,
    /// Whether it is what an ended session leaves for a few seconds (a
    /// record without data, which no request reads as a session).
    pub ended: bool,
    /// The session's handle, when the record decodes.
    pub handle: Option<SessionHandle>,
    /// The user the session is bound to.
    pub user: Option<String>,
    /// When the session was created or its user logged in, if recorded.
    pub created: Option<SystemTime>,
    /// When the session was last seen, if recorded.
    pub last_seen: Option<SystemTime>,
    /// Whether the session is permanent (its cookie has an expiry).
    pub permanent: bool,
    /// The application's data, as JSON (MessagePack binaries and
    /// extensions as `{"$binary": base64}`, `{"$timestamp": RFC 3339}` or
    /// `{"$ext": type, "data": base64}`).
    pub data: Map<String, Json>,
    /// The library's and Flask's own keys (`_permanent`, `_ss_*`), apart.
    pub metadata: Map<String, Json>,
}

impl Admin {
    /// The sessions of the store `config` names (`SESSION_TYPE` and its
    /// settings, as [`SessionConfig::from_env`] reads them), with their
    /// users' indexes kept up to date where the store keeps them.
    pub fn from_config(config: SessionConfig) -> Result<Admin, ConfigError> {
        let abilities = configured::abilities(&config)?;
        let walk = abilities.admin.ok_or_else(|| {
            ConfigError::Invalid("this session store cannot be walked by operator tools".into())
        })?;
        let users = abilities.index.map(|index| UserIndex {
            settings: UserSessions::default(),
            index,
        });
        Admin::with(abilities.store, users, walk, config)
    }

    /// The sessions in `store`, as `config` (its key prefix, secret and
    /// record limit) sees them.
    pub fn new(store: impl StoreAdmin, config: SessionConfig) -> Result<Admin, ConfigError> {
        let store = Arc::new(store);
        Admin::with(store.clone(), None, store, config)
    }

    /// As [`new`](Self::new), for a store that keeps users' indexes, which
    /// are then kept up to date as sessions are ended and written back.
    pub fn with_user_sessions(
        store: impl StoreAdmin + SessionIndex,
        config: SessionConfig,
    ) -> Result<Admin, ConfigError> {
        let store = Arc::new(store);
        let users = UserIndex {
            settings: UserSessions::default(),
            index: store.clone(),
        };
        Admin::with(store.clone(), Some(users), store, config)
    }

    fn with(
        store: Arc<dyn crate::store::DynStore>,
        users: Option<UserIndex>,
        walk: Arc<dyn DynAdmin>,
        config: SessionConfig,
    ) -> Result<Admin, ConfigError> {
        Ok(Admin {
            sessions: Sessions::from_engine(Engine::new(store, users, config)?),
            walk,
        })
    }

    fn engine(&self) -> &Engine {
        self.sessions.engine()
    }

    /// The key prefix of the sessions.
    pub fn prefix(&self) -> &str {
        self.engine().prefix()
    }

    /// A page of the walk over the stored records under the key prefix
    /// ([`StoreAdmin::scan`]): start with [`ScanCursor::start`], go on
    /// with each page's `next` until it is `None`.
    pub async fn scan(&self, cursor: &ScanCursor, count: usize) -> Result<ScanPage, SessionError> {
        self.engine()
            .scan_records(self.walk.as_ref(), cursor, count)
            .await
    }

    /// The record at `key`, if live.
    pub async fn get(&self, key: &str) -> Result<Option<StoredEntry>, SessionError> {
        self.engine().inspect_key(self.walk.as_ref(), key).await
    }

    /// The store key of the session a cookie value names (verified with
    /// the configured secrets when cookies are signed), or `None` when it
    /// names none.
    pub fn key_of_cookie(&self, cookie: &str) -> Option<String> {
        self.engine().cookie_key(cookie)
    }

    /// Whether `key` can be a session's key: this configuration's key
    /// prefix, then a well-formed session id (or, with
    /// [`hash_ids`](SessionConfig::hash_ids), an id's hash).
    pub fn is_session_key(&self, key: &str) -> bool {
        self.engine().is_session_key(key)
    }

    /// The record `target` names: a session cookie's value, else a
    /// [`SessionHandle`] (found by walking the records: it costs a walk).
    pub async fn find(&self, target: &str) -> Result<Option<StoredEntry>, SessionError> {
        if let Some(key) = self.key_of_cookie(target) {
            return self.get(&key).await;
        }
        let Ok(handle) = target.parse::<SessionHandle>() else {
            return Ok(None);
        };
        let mut found = None;
        self.walk(1000, |entry| {
            let hit = self.examine(&entry).handle.as_ref() == Some(&handle);
            if hit {
                found = Some(entry);
            }
            !hit
        })
        .await?;
        Ok(found)
    }

    /// Calls `each` with every record under the prefix, in pages of about
    /// `count`, until it returns `false`.
    pub async fn walk(
        &self,
        count: usize,
        mut each: impl FnMut(StoredEntry) -> bool,
    ) -> Result<(), SessionError> {
        let mut cursor = ScanCursor::start();
        loop {
            let page = self.scan(&cursor, count).await?;
            for entry in page.entries {
                if !each(entry) {
                    return Ok(());
                }
            }
            match page.next {
                Some(next) => cursor = next,
                None => return Ok(()),
            }
        }
    }

    /// Decodes `entry` for a person to read, and says what is wrong with
    /// it, if anything.
    pub fn examine(&self, entry: &StoredEntry) -> Examined {
        let mut examined = Examined {
            size: entry.bytes.as_ref().map_or(0, Vec::len),
            format: None,
            problem: None,
            ended: false,
            handle: None,
            user: None,
            created: None,
            last_seen: None,
            permanent: false,
            data: Map::new(),
            metadata: Map::new(),
        };
        let Some(bytes) = &entry.bytes else {
            examined.problem = Some(Problem::WrongType);
            return examined;
        };
        let (record, format) = match Record::decode_any(bytes) {
            Ok(decoded) => decoded,
            Err(err) => {
                examined.problem = Some(Problem::Undecodable(err.to_string()));
                return examined;
            }
        };
        let limit = self.engine().config().max_record_size;
        if bytes.len() > limit {
            examined.problem = Some(Problem::Oversized {
                size: bytes.len(),
                limit,
            });
        }
        let time = |key| {
            let secs = record.meta_u64(key)?;
            SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
        };
        examined.format = Some(format);
        examined.ended = !record.has_data();
        examined.handle = self
            .engine()
            .member_of(&entry.key)
            .map(|member| Engine::handle_of(&record, member));
        examined.user = record.meta_str(record::USER).map(str::to_owned);
        examined.created = time(record::CREATED);
        examined.last_seen = time(record::SEEN);
        examined.permanent = record.permanent();
        for (key, value) in record.iter() {
            let key = String::from_utf8_lossy(key).into_owned();
            let value = json(value);
            match Record::is_metadata(&key) {
                true => examined.metadata.insert(key, value),
                false => examined.data.insert(key, value),
            };
        }
        examined
    }

    /// Ends the session at `key`, which held `current` when read (from a
    /// walk or [`get`](Self::get)): its cookie gets a fresh session next
    /// time, and a request in flight on it cannot save it back. Tells
    /// whether it held a live session.
    pub async fn end(&self, key: &str, current: Option<Vec<u8>>) -> Result<bool, SessionError> {
        self.engine().end_key(key, current).await
    }

    /// Ends every session of `user` but those whose handle is in `except`:
    /// those in the user's index (where the store keeps one), then any
    /// other a walk finds bound to them. Returns how many were live.
    pub async fn end_user(&self, user: &str, except: &[SessionHandle]) -> Result<usize, SessionError> {
        let mut ended = 0;
        if self.engine().keeps_indexes() {
            ended += self
                .engine()
                .revoke_sessions(user, |h| h.is_none_or(|h| !except.contains(h)))
                .await?;
        }
        let mut left = Vec::new();
        self.walk(1000, |entry| {
            let examined = self.examine(&entry);
            let kept = examined.handle.as_ref().is_some_and(|h| except.contains(h));
            if examined.user.as_deref() == Some(user) && !examined.ended && !kept {
                left.push(entry);
            }
            true
        })
        .await?;
        // A walk may return a key twice.
        left.sort_by(|a, b| a.key.cmp(&b.key));
        left.dedup_by(|a, b| a.key == b.key);
        for entry in left {
            ended += usize::from(self.end(&entry.key, entry.bytes).await?);
        }
        Ok(ended)
    }

    /// Deletes whatever `key` holds (a record nobody can use).
    pub async fn delete(&self, key: &str) -> Result<(), SessionError> {
        self.engine().remove_key(key).await
    }

    /// Writes `entry` as it is, with its time to live (a record that never
    /// expires gets the configured lifetime, and none gets more than
    /// [`SessionConfig::MAX_LIFETIME`]): only where nothing is stored, or
    /// with `overwrite` over what is. A session bound to a user joins the
    /// user's index, where the store keeps indexes. Tells whether it wrote.
    pub async fn put(&self, entry: &StoredEntry, overwrite: bool) -> Result<bool, SessionError> {
        let Some(bytes) = &entry.bytes else {
            return Ok(false);
        };
        let ttl = entry
            .ttl
            .unwrap_or(self.engine().config().lifetime)
            .min(SessionConfig::MAX_LIFETIME);
        self.engine().put_record(&entry.key, bytes, ttl, overwrite).await
    }

    /// Removes expired records now, for a store that keeps them until a
    /// cleanup (SQL); returns how many, or `None` for a store that expires
    /// records by itself.
    pub async fn purge_expired(&self) -> Result<Option<u64>, SessionError> {
        self.engine().purge_expired(self.walk.as_ref()).await
    }

    /// The users' sessions, through their indexes (where the store keeps
    /// them).
    pub fn users(&self) -> Users {
        self.sessions.users()
    }
}

/// A MessagePack value as JSON, for reading.
fn json(mut raw: &[u8]) -> Json {
    match rmpv::decode::read_value(&mut raw) {
        Ok(value) => to_json(value),
        Err(_) => Json::Null,
    }
}

fn to_json(value: rmpv::Value) -> Json {
    use rmpv::Value;
    let tagged = |tag: &str, value: Json| Json::Object(Map::from_iter([(tag.to_owned(), value)]));
    match value {
        Value::Nil => Json::Null,
        Value::Boolean(b) => Json::Bool(b),
        Value::Integer(n) => match (n.as_u64(), n.as_i64()) {
            (Some(n), _) => n.into(),
            (_, Some(n)) => n.into(),
            _ => Json::Null,
        },
        Value::F32(x) => serde_json::Number::from_f64(f64::from(x)).map_or(Json::Null, Json::Number),
        Value::F64(x) => serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number),
        Value::String(s) => match s.into_str() {
            Some(text) => Json::String(text),
            None => Json::Null,
        },
        Value::Binary(bytes) => tagged("$binary", Json::String(STANDARD.encode(bytes))),
        Value::Array(items) => Json::Array(items.into_iter().map(to_json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::String(s) => s.into_str().unwrap_or_default(),
                        other => other.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Value::Ext(-1, data) => match record::timestamp_parts(&data).and_then(|(s, n)| record::rfc3339(s, n))
        {
            Some(text) => tagged("$timestamp", Json::String(text)),
            None => tagged("$binary", Json::String(STANDARD.encode(data))),
        },
        Value::Ext(kind, data) => Json::Object(Map::from_iter([
            ("$ext".to_owned(), Json::from(kind)),
            ("data".to_owned(), Json::String(STANDARD.encode(data))),
        ])),
    }
}
