//! What a response gets from the session, decided once for every adapter.

use http::header::{self, Entry, HeaderName};
use http::{HeaderMap, HeaderValue};

use crate::error::ErrorResponse;

/// The session's part of a response, decided by
/// [`RequestState::finish`](super::RequestState::finish). An adapter only
/// carries it out.
#[derive(Debug)]
pub(crate) enum Plan {
    /// The handler never used the session: its response goes out untouched.
    Untouched,
    /// The handler's response goes out, varying with the cookie, with this
    /// `Set-Cookie` if any.
    Respond { set_cookie: Option<HeaderValue> },
    /// The request fails: this response replaces the handler's.
    Fail(ErrorResponse),
}

/// A framework's response headers, as a [`Plan`] needs them.
pub(crate) trait ResponseHeaders {
    /// Adds a value of `name`, keeping those already there, unless one of
    /// them passes `covers`.
    fn add_unless(&mut self, name: HeaderName, value: HeaderValue, covers: impl Fn(&[u8]) -> bool);
    /// Adds a value of `name`, keeping those already there.
    fn append(&mut self, name: HeaderName, value: HeaderValue);
}

impl Plan {
    /// Adds the session's headers to a handler's response: `Vary: Cookie`
    /// unless it already varies with the cookie, the `Set-Cookie`, and
    /// `Cache-Control: private` with it unless the handler chose a cache
    /// policy, so that no shared cache stores one visitor's cookie and hands
    /// it to another. Does nothing for [`Plan::Fail`], which replaces the
    /// response instead.
    pub(crate) fn decorate(self, headers: &mut impl ResponseHeaders) {
        let Plan::Respond { set_cookie } = self else {
            return;
        };
        headers.add_unless(header::VARY, HeaderValue::from_static("Cookie"), varies_on_cookie);
        if let Some(cookie) = set_cookie {
            headers.append(header::SET_COOKIE, cookie);
            headers.add_unless(header::CACHE_CONTROL, HeaderValue::from_static("private"), |_| {
                true
            });
        }
    }
}

/// Whether a `Vary` value already covers the cookie.
fn varies_on_cookie(value: &[u8]) -> bool {
    value.split(|b| *b == b',').any(|part| {
        let part = part.trim_ascii();
        part == b"*" || part.eq_ignore_ascii_case(b"cookie")
    })
}

impl ResponseHeaders for HeaderMap {
    fn add_unless(&mut self, name: HeaderName, value: HeaderValue, covers: impl Fn(&[u8]) -> bool) {
        // One lookup of `name`, whether it is there or not.
        match self.entry(name) {
            Entry::Vacant(entry) => {
                entry.insert(value);
            }
            Entry::Occupied(mut entry) => {
                if !entry.iter().any(|old| covers(old.as_bytes())) {
                    entry.append(value);
                }
            }
        }
    }

    fn append(&mut self, name: HeaderName, value: HeaderValue) {
        HeaderMap::append(self, name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_is_added_once_and_cache_control_only_when_absent() {
        let cookie = HeaderValue::from_static("session=abc; Path=/");
        let mut headers = HeaderMap::new();
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding, cookie"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        Plan::Respond {
            set_cookie: Some(cookie.clone()),
        }
        .decorate(&mut headers);
        assert_eq!(headers.get_all(header::VARY).iter().count(), 1);
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        assert_eq!(headers[header::SET_COOKIE], cookie);

        let mut headers = HeaderMap::new();
        Plan::Respond {
            set_cookie: Some(cookie),
        }
        .decorate(&mut headers);
        assert_eq!(headers[header::VARY], "Cookie");
        assert_eq!(headers[header::CACHE_CONTROL], "private");

        let mut headers = HeaderMap::new();
        Plan::Respond { set_cookie: None }.decorate(&mut headers);
        assert_eq!(headers[header::VARY], "Cookie");
        assert!(!headers.contains_key(header::CACHE_CONTROL));

        let mut headers = HeaderMap::new();
        Plan::Untouched.decorate(&mut headers);
        assert!(headers.is_empty());
    }
}
