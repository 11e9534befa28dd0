//! The change log of a request: what a handler did to its session, kept so
//! that the engine can replay it on the record another request stored.

use std::borrow::Cow;
use std::sync::Arc;

use crate::error::SessionError;
use crate::record::Record;

/// A closure of [`Session::update`](crate::Session::update), kept so it can
/// be re-applied: from the key and its encoded current value to the encoded
/// new one.
pub(crate) type Updater = Arc<dyn Fn(&str, Option<&[u8]>) -> Result<Vec<u8>, SessionError> + Send + Sync>;

/// One change a handler made. Keys are a handler's (checked not to be
/// reserved) or the engine's own metadata keys.
#[derive(Clone)]
pub(crate) enum Change {
    Set(Cow<'static, str>, Vec<u8>),
    Remove(Cow<'static, str>),
    Update(String, Updater),
    Clear,
}

impl Change {
    /// The key the change is about; none for a clear.
    pub(crate) fn key(&self) -> Option<&str> {
        match self {
            Change::Set(key, _) | Change::Remove(key) => Some(key),
            Change::Update(key, _) => Some(key),
            Change::Clear => None,
        }
    }

    pub(crate) fn apply(&self, record: &mut Record) -> Result<(), SessionError> {
        match self {
            Change::Set(key, value) => record.set(key, value),
            Change::Remove(key) => {
                record.remove(key);
            }
            Change::Update(key, f) => {
                let value = f(key, record.get(key))?;
                record.set(key, &value);
            }
            Change::Clear => record.clear_data(),
        }
        Ok(())
    }
}
