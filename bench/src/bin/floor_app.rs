//! The floor: no session library at all. The cookie names a Redis key
//! holding `user_id:counter`; `/read` is one GET, `/incr` one GET and one
//! SET EX, with nothing else in the way: the least any session layer can
//! cost. (It loses concurrent increments, like any blind read-modify-write.)
//!
//! With `BENCH_SAME_WORK=1` it does by hand the store and header work
//! server-session does with its defaults, and nothing more: a new id is
//! written with `SET ... NX`, a read slides the expiry (`GETEX ... EX`), an
//! increment is saved with the same compare-and-set script (and applied
//! again to the stored value on a conflict, so no increment is lost), and
//! every response that used the session sends the cookie again with its
//! `Expires`, `Vary: Cookie` and `Cache-Control: private`. What is left
//! between it and server-session is the library's own work: the record's
//! format, the handle, the change log, the cookie's parsing and checks.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use server_session_bench::{LIFETIME_SECS, MISSING};

/// The compare-and-set save server-session runs on a server without
/// `SET ... IFEQ`: write only if the key still holds what was loaded.
const SAVE: &str = r"
local current = redis.call('GET', KEYS[1])
if not current then return 2 end
if current ~= ARGV[3] then return current end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 0
";

/// The save script's SHA-1 when `BENCH_SAME_WORK` is set.
static SAME_WORK: OnceLock<Option<String>> = OnceLock::new();

fn same_work() -> Option<&'static str> {
    SAME_WORK.get().and_then(|sha| sha.as_deref())
}

fn key(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let id = cookies.split(';').find_map(|c| c.trim().strip_prefix("sid="))?;
    Some(format!("floor:{id}"))
}

/// Loads the session; `slide` (with `BENCH_SAME_WORK`) renews its expiry
/// with the read, as a read that changes nothing does.
async fn load(
    redis: &mut ConnectionManager,
    headers: &HeaderMap,
    slide: bool,
) -> Result<Option<(String, u64, u64)>, Response> {
    let Some(key) = key(headers) else { return Ok(None) };
    let blob: Option<String> = if slide && same_work().is_some() {
        redis::cmd("GETEX")
            .arg(&key)
            .arg("EX")
            .arg(LIFETIME_SECS)
            .query_async(redis)
            .await
            .map_err(fail)?
    } else {
        redis.get(&key).await.map_err(fail)?
    };
    Ok(blob.and_then(|b| {
        let (user, counter) = parse(&b)?;
        Some((key, user, counter))
    }))
}

fn parse(blob: &str) -> Option<(u64, u64)> {
    let (user, counter) = blob.split_once(':')?;
    Some((user.parse().ok()?, counter.parse().ok()?))
}

fn fail(err: redis::RedisError) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, err.to_string()).into_response()
}

/// The response, with the session's headers when the floor does the same
/// work as server-session (`key` names the session's Redis key).
fn respond(body: String, key: Option<&str>) -> Response {
    let mut response = body.into_response();
    if let (Some(key), Some(_)) = (key, same_work()) {
        let id = &key["floor:".len()..];
        let expires = std::time::SystemTime::now() + std::time::Duration::from_secs(LIFETIME_SECS);
        let cookie = format!(
            "sid={id}; HttpOnly; SameSite=Lax; Path=/; Expires={}",
            httpdate::fmt_http_date(expires)
        );
        let headers = response.headers_mut();
        headers.insert(header::VARY, HeaderValue::from_static("Cookie"));
        headers.insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).unwrap());
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    }
    response
}

async fn login(State(mut redis): State<ConnectionManager>) -> Result<Response, Response> {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let id = URL_SAFE_NO_PAD.encode(raw);
    let key = format!("floor:{id}");
    if same_work().is_some() {
        let _: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg("42:0")
            .arg("NX")
            .arg("GET")
            .arg("EX")
            .arg(LIFETIME_SECS)
            .query_async(&mut redis)
            .await
            .map_err(fail)?;
        return Ok(respond("ok".into(), Some(&key)));
    }
    let _: () = redis.set_ex(key, "42:0", LIFETIME_SECS).await.map_err(fail)?;
    let mut response = "ok".into_response();
    let cookie = format!("sid={id}; HttpOnly; SameSite=Lax; Path=/");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).unwrap());
    Ok(response)
}

async fn read(State(mut redis): State<ConnectionManager>, headers: HeaderMap) -> Result<Response, Response> {
    Ok(match load(&mut redis, &headers, true).await? {
        Some((key, user, _)) => respond(user.to_string(), Some(&key)),
        None => respond(MISSING.into(), None),
    })
}

async fn incr(State(mut redis): State<ConnectionManager>, headers: HeaderMap) -> Result<Response, Response> {
    let Some((key, mut user, mut counter)) = load(&mut redis, &headers, false).await? else {
        return Ok(respond(MISSING.into(), None));
    };
    let Some(sha) = same_work() else {
        let _: () = redis
            .set_ex(&key, format!("{user}:{}", counter + 1), LIFETIME_SECS)
            .await
            .map_err(fail)?;
        return Ok(respond((counter + 1).to_string(), None));
    };
    // Compare-and-set: on a conflict the script answers the stored value,
    // and the increment is applied to it and saved again.
    let mut loaded = format!("{user}:{counter}");
    loop {
        let saved = format!("{user}:{}", counter + 1);
        let answer: redis::Value = redis::cmd("EVALSHA")
            .arg(sha)
            .arg(1)
            .arg(&key)
            .arg(&saved)
            .arg(LIFETIME_SECS)
            .arg(&loaded)
            .query_async(&mut redis)
            .await
            .map_err(fail)?;
        match answer {
            redis::Value::Int(0) => return Ok(respond((counter + 1).to_string(), Some(&key))),
            redis::Value::BulkString(current) => {
                loaded = String::from_utf8_lossy(&current).into_owned();
                let Some(stored) = parse(&loaded) else {
                    return Ok(respond(MISSING.into(), None));
                };
                (user, counter) = stored;
            }
            _ => return Ok(respond(MISSING.into(), None)),
        }
    }
}

async fn counter(
    State(mut redis): State<ConnectionManager>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    Ok(match load(&mut redis, &headers, true).await? {
        Some((key, _, counter)) => respond(counter.to_string(), Some(&key)),
        None => respond(MISSING.into(), None),
    })
}

fn main() -> std::io::Result<()> {
    server_session_bench::serve(|url| async move {
        let client = redis::Client::open(url.as_str()).expect("URL");
        let mut redis = ConnectionManager::new(client).await.expect("Redis");
        let sha = match std::env::var_os("BENCH_SAME_WORK") {
            Some(_) => Some(
                redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(SAVE)
                    .query_async::<String>(&mut redis)
                    .await
                    .expect("SCRIPT LOAD"),
            ),
            None => None,
        };
        let _ = SAME_WORK.set(sha);
        server_session_bench::routes(login, read, incr, counter).with_state(redis)
    })
}
