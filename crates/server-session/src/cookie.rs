//! The session cookie: finding it in a request, writing `Set-Cookie`, and the
//! optional Flask-Session-compatible signer.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::{Cookie, SameSite};
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderValue;
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// The salt Flask-Session derives its signing key with.
const SALT: &[u8] = b"flask-session";

/// Signs session ids the way Flask-Session 0.8 does (`SESSION_USE_SIGNER`):
/// `sid + "." + base64url(HMAC-SHA1(HMAC-SHA1(secret, "flask-session"), sid))`.
/// Signatures are made with the first secret and checked, in constant time,
/// against every secret, so a rotated secret can stay as a fallback.
#[derive(Clone)]
pub(crate) struct Signer {
    keys: Vec<HmacSha1>,
}

impl Signer {
    /// A signer that signs with `secret` and also accepts `fallbacks`.
    pub(crate) fn new<'a>(secret: &'a [u8], fallbacks: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let keys = std::iter::once(secret)
            .chain(fallbacks)
            .map(|secret| {
                let mut derive = HmacSha1::new_from_slice(secret).expect("HMAC takes keys of any length");
                derive.update(SALT);
                HmacSha1::new_from_slice(&derive.finalize().into_bytes())
                    .expect("HMAC takes keys of any length")
            })
            .collect();
        Signer { keys }
    }

    /// The cookie value for `sid`.
    pub(crate) fn sign(&self, sid: &str) -> String {
        let mut mac = self.keys[0].clone();
        mac.update(sid.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("{sid}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The sid of a signed cookie value, if any secret verifies it.
    ///
    /// The signature may carry base64 padding or the standard alphabet's `+`
    /// and `/`, which Flask-Session accepts too; anything else is refused.
    pub(crate) fn unsign<'v>(&self, value: &'v str) -> Option<&'v str> {
        let (sid, sig) = value.rsplit_once('.')?;
        let sig: String = sig
            .trim_end_matches('=')
            .chars()
            .map(|c| match c {
                '+' => '-',
                '/' => '_',
                c => c,
            })
            .collect();
        let mut tag = [0u8; 20];
        match URL_SAFE_NO_PAD.decode_slice(sig.as_bytes(), &mut tag) {
            Ok(20) => {}
            _ => return None,
        }
        let verified = self.keys.iter().any(|key| {
            let mut mac = key.clone();
            mac.update(sid.as_bytes());
            mac.verify_slice(&tag).is_ok()
        });
        verified.then_some(sid)
    }
}

/// The attributes of the session cookie.
#[derive(Clone, Debug)]
pub(crate) struct CookieSettings {
    pub(crate) name: String,
    pub(crate) domain: Option<String>,
    pub(crate) path: String,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: Option<SameSite>,
    pub(crate) partitioned: bool,
}

/// Flask's defaults, with `HttpOnly` and `SameSite=Lax`: a cookie named
/// `session` for the whole host.
impl Default for CookieSettings {
    fn default() -> Self {
        CookieSettings {
            name: "session".into(),
            domain: None,
            path: "/".into(),
            secure: false,
            http_only: true,
            same_site: Some(SameSite::Lax),
            partitioned: false,
        }
    }
}

impl CookieSettings {
    fn base(&self, value: String) -> Cookie<'static> {
        let mut cookie = Cookie::new(self.name.clone(), value);
        cookie.set_path(self.path.clone());
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.clone());
        }
        cookie.set_secure(self.secure);
        cookie.set_http_only(self.http_only);
        cookie.set_same_site(self.same_site);
        cookie.set_partitioned(self.partitioned);
        cookie
    }

    /// Values of every cookie named like the session cookie, in header order.
    ///
    /// A request's `Cookie` header is only `name=value` pairs separated by
    /// `;` (RFC 6265, section 4.2.1): no attributes, no escaping. This scan
    /// reads just that, on every request that uses its session, without the
    /// cookie crate's general `Set-Cookie` parser. It reads bytes, so
    /// another cookie's non-ASCII value cannot hide the session cookie, and
    /// leaves it to the caller to check the value. Surrounding whitespace and
    /// double quotes around a value are dropped; anything malformed simply
    /// matches nothing.
    pub(crate) fn find<'h>(
        &self,
        headers: impl Iterator<Item = &'h HeaderValue>,
    ) -> impl Iterator<Item = &'h [u8]> {
        let name = self.name.as_bytes();
        headers
            .flat_map(|h| Pairs(Some(h.as_bytes())))
            .filter_map(move |pair| {
                // The name is a token (checked with the configuration): no
                // `=`, no whitespace, so the pair's first `=` follows it.
                let rest = pair.trim_ascii_start().strip_prefix(name)?;
                let value = rest.trim_ascii_start().strip_prefix(b"=")?.trim_ascii();
                Some(
                    value
                        .strip_prefix(b"\"")
                        .and_then(|v| v.strip_suffix(b"\""))
                        .unwrap_or(value),
                )
            })
    }
}

/// The `;`-separated parts of a `Cookie` header value, as `split` gives
/// them, each separator found by a vectorized search rather than byte by
/// byte.
struct Pairs<'h>(Option<&'h [u8]>);

impl<'h> Iterator for Pairs<'h> {
    type Item = &'h [u8];

    fn next(&mut self) -> Option<&'h [u8]> {
        let rest = self.0?;
        match memchr::memchr(b';', rest) {
            Some(at) => {
                self.0 = Some(&rest[at + 1..]);
                Some(&rest[..at])
            }
            None => {
                self.0 = None;
                Some(rest)
            }
        }
    }
}

/// `Set-Cookie` values for one configuration. The attributes are rendered
/// once by the cookie crate; per response only the value and `Expires` (the
/// last attribute, where the cookie crate puts it) are filled in.
#[derive(Clone, Debug)]
pub(crate) struct CookieWriter {
    settings: CookieSettings,
    /// `name=`
    prefix: String,
    /// `; HttpOnly; SameSite=Lax; Path=/` and the rest.
    attributes: String,
    removal: HeaderValue,
}

impl CookieWriter {
    pub(crate) fn new(settings: CookieSettings) -> CookieWriter {
        let template = settings.base(String::new()).to_string();
        let prefix = format!("{}=", settings.name);
        let attributes = template[prefix.len()..].to_owned();
        let mut removal = settings.base(String::new());
        removal.set_max_age(time::Duration::ZERO);
        removal.set_expires(time::OffsetDateTime::UNIX_EPOCH);
        let removal = header(&removal);
        CookieWriter {
            settings,
            prefix,
            attributes,
            removal,
        }
    }

    pub(crate) fn settings(&self) -> &CookieSettings {
        &self.settings
    }

    /// `Set-Cookie` carrying `value`, with `Expires` for a permanent session.
    pub(crate) fn set(&self, value: &str, expires: Option<SystemTime>) -> HeaderValue {
        // Sized exactly: the header then takes the buffer as it is, where a
        // buffer with spare room would cost it an allocation of its own.
        const EXPIRES: &str = "; Expires=";
        let dated = expires.map_or(0, |_| EXPIRES.len() + HTTP_DATE_LEN);
        let mut text = String::with_capacity(self.prefix.len() + value.len() + self.attributes.len() + dated);
        text.push_str(&self.prefix);
        text.push_str(value);
        text.push_str(&self.attributes);
        if let Some(expires) = expires {
            text.push_str(EXPIRES);
            push_http_date(&mut text, expires);
        }
        // The attributes were checked when the configuration was built and
        // values are base64url, so this is always a valid header value.
        HeaderValue::try_from(text).expect("a validated cookie is a valid header")
    }

    /// `Set-Cookie` that deletes the cookie. It carries the same Path, Domain,
    /// Secure, SameSite and Partitioned attributes as the cookie it deletes,
    /// or browsers would keep the original (for `__Host-` names in particular).
    pub(crate) fn removal(&self) -> HeaderValue {
        self.removal.clone()
    }
}

/// The length of an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`), the same
/// for every date of a four-digit year. Only sizes a buffer.
const HTTP_DATE_LEN: usize = 29;

/// Appends `time` as an HTTP date. Every response in the same second gets the
/// same text, so each thread formats it once per second.
fn push_http_date(out: &mut String, time: SystemTime) {
    use std::cell::RefCell;
    thread_local! {
        static LAST: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let second = crate::clock::unix_secs(time);
    LAST.with_borrow_mut(|(cached, text)| {
        if *cached != second {
            let whole = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(second);
            *text = httpdate::fmt_http_date(whole);
            *cached = second;
        }
        out.push_str(text);
    });
}

fn header(cookie: &Cookie<'_>) -> HeaderValue {
    // Names, paths and domains were checked when the configuration was built,
    // and values are base64url, so the text is always a valid header value.
    HeaderValue::try_from(cookie.to_string()).expect("a validated cookie is a valid header")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> CookieSettings {
        CookieSettings::default()
    }

    #[test]
    fn pairs_split_as_split_does() {
        for text in ["", ";", "a", "a;", ";a", "a;b", "a; b;;c ;", "x=1; session=abc"] {
            let ours: Vec<&[u8]> = Pairs(Some(text.as_bytes())).collect();
            let split: Vec<&[u8]> = text.as_bytes().split(|b| *b == b';').collect();
            assert_eq!(ours, split, "{text:?}");
        }
    }

    #[test]
    fn set_cookie_text() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_798_315_316);
        let header = CookieWriter::new(settings()).set("abc", Some(at));
        assert_eq!(
            header.to_str().unwrap(),
            "session=abc; HttpOnly; SameSite=Lax; Path=/; Expires=Sat, 26 Dec 2026 20:01:56 GMT"
        );
        let header = CookieWriter::new(settings()).set("abc", None);
        assert_eq!(
            header.to_str().unwrap(),
            "session=abc; HttpOnly; SameSite=Lax; Path=/"
        );
    }

    #[test]
    fn removal_keeps_attributes() {
        let s = CookieSettings {
            name: "__Host-sid".into(),
            secure: true,
            same_site: Some(SameSite::None),
            partitioned: true,
            ..settings()
        };
        assert_eq!(
            CookieWriter::new(s).removal().to_str().unwrap(),
            "__Host-sid=; HttpOnly; SameSite=None; Partitioned; Secure; Path=/; Max-Age=0; \
             Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }

    #[test]
    fn finds_every_candidate() {
        let headers = [
            HeaderValue::from_static("a=1; session=first"),
            HeaderValue::from_static("session=second;other=x"),
            HeaderValue::from_static(" session = \"third\" ;sessions=no; xsession=no; session"),
        ];
        let found: Vec<_> = settings().find(headers.iter()).collect();
        assert_eq!(found, [&b"first"[..], b"second", b"third"]);
    }

    #[test]
    fn other_cookies_may_hold_any_bytes() {
        let headers =
            [HeaderValue::from_bytes(b"x=\xc3\xa9; y=\xff\x80; session=good; session=\xffbad").unwrap()];
        // The value that is not text is found too: the id check refuses it.
        let found: Vec<_> = settings().find(headers.iter()).collect();
        assert_eq!(found, [&b"good"[..], b"\xffbad"]);
    }

    #[test]
    fn expires_text_is_an_http_date_for_each_second() {
        let mut a = String::new();
        let mut b = String::new();
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_798_315_316_250);
        push_http_date(&mut a, t);
        push_http_date(&mut b, t + std::time::Duration::from_millis(500));
        assert_eq!(a, "Sat, 26 Dec 2026 20:01:56 GMT");
        assert_eq!(b, "Sat, 26 Dec 2026 20:01:56 GMT");
        let mut c = String::new();
        push_http_date(&mut c, t + std::time::Duration::from_secs(1));
        assert_eq!(c, "Sat, 26 Dec 2026 20:01:57 GMT");
        assert!([&a, &c].iter().all(|date| date.len() == HTTP_DATE_LEN));
    }

    fn fixtures() -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/flask-session-0.8.0.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn flask_session_signing_vectors() {
        let fixtures = fixtures();
        let vectors = fixtures["signing"]["vectors"].as_array().unwrap();
        assert_eq!(vectors.len(), 5);
        for v in vectors {
            let hex = v["secret_key_hex"].as_str().unwrap();
            let secret: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            let sid = v["sid"].as_str().unwrap();
            let cookie = v["cookie_value"].as_str().unwrap();
            let signer = Signer::new(&secret, []);
            assert_eq!(signer.sign(sid), cookie, "signing {sid} with {hex}");
            assert_eq!(signer.unsign(cookie), Some(sid), "verifying {cookie}");
            assert_eq!(Signer::new(b"other", []).unsign(cookie), None);
        }
    }

    #[test]
    fn flask_session_unsign_behaviour() {
        let fixtures = fixtures();
        for (section, secret) in [
            (
                "unsign_behaviour_secret=test-secret-key-for-fixtures",
                "test-secret-key-for-fixtures",
            ),
            ("unsign_behaviour_secret=secret", "secret"),
        ] {
            let signer = Signer::new(secret.as_bytes(), []);
            for (name, case) in fixtures["signing"][section].as_object().unwrap() {
                let input = case["input"].as_str().unwrap();
                let flask = case["unsign_result"]
                    .as_str()
                    .filter(|_| case["accepted"] == true);
                // Flask-Session strips characters outside the base64 alphabet
                // before decoding, so four inserted '!' happen to pass there.
                // Here a signature with foreign characters is refused.
                let expected = if name.contains("inserted '!'") {
                    None
                } else {
                    flask
                };
                assert_eq!(signer.unsign(input), expected, "{section}: {name}");
            }
        }
    }

    #[test]
    fn fallback_secrets_verify_but_never_sign() {
        let old = Signer::new(b"old", []);
        let rotated = Signer::new(b"new-secret", [&b"old"[..]]);
        let cookie = old.sign("S9kplDgm5j2vs1q2lbt9aF1PHWmwyqxxQwgfy0Y5Z9c");
        assert_eq!(
            rotated.unsign(&cookie),
            Some("S9kplDgm5j2vs1q2lbt9aF1PHWmwyqxxQwgfy0Y5Z9c")
        );
        assert_ne!(rotated.sign("x"), old.sign("x"));
        assert_eq!(rotated.sign("x"), Signer::new(b"new-secret", []).sign("x"));
    }
}
