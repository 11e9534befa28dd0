//! The floor: no session library at all. The cookie names a Redis key
//! holding `user_id:counter`; `/read` is one GET, `/incr` one GET and one
//! SET EX, with nothing else in the way: the least any session layer can
//! cost. (It loses concurrent increments, like any blind read-modify-write.)

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use server_session_bench::{LIFETIME_SECS, MISSING};

fn key(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let id = cookies.split(';').find_map(|c| c.trim().strip_prefix("sid="))?;
    Some(format!("floor:{id}"))
}

async fn load(
    redis: &mut ConnectionManager,
    headers: &HeaderMap,
) -> Result<Option<(String, u64, u64)>, Response> {
    let Some(key) = key(headers) else { return Ok(None) };
    let blob: Option<String> = redis.get(&key).await.map_err(fail)?;
    Ok(blob.and_then(|b| {
        let (user, counter) = b.split_once(':')?;
        Some((key, user.parse().ok()?, counter.parse().ok()?))
    }))
}

fn fail(err: redis::RedisError) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, err.to_string()).into_response()
}

async fn login(State(mut redis): State<ConnectionManager>) -> Result<Response, Response> {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let id = URL_SAFE_NO_PAD.encode(raw);
    let _: () = redis
        .set_ex(format!("floor:{id}"), "42:0", LIFETIME_SECS)
        .await
        .map_err(fail)?;
    let mut response = "ok".into_response();
    let cookie = format!("sid={id}; HttpOnly; SameSite=Lax; Path=/");
    response
        .headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).unwrap());
    Ok(response)
}

async fn read(State(mut redis): State<ConnectionManager>, headers: HeaderMap) -> Result<String, Response> {
    Ok(load(&mut redis, &headers)
        .await?
        .map_or(MISSING.into(), |(_, user, _)| user.to_string()))
}

async fn incr(State(mut redis): State<ConnectionManager>, headers: HeaderMap) -> Result<String, Response> {
    let Some((key, user, counter)) = load(&mut redis, &headers).await? else {
        return Ok(MISSING.into());
    };
    let _: () = redis
        .set_ex(key, format!("{user}:{}", counter + 1), LIFETIME_SECS)
        .await
        .map_err(fail)?;
    Ok((counter + 1).to_string())
}

async fn counter(State(mut redis): State<ConnectionManager>, headers: HeaderMap) -> Result<String, Response> {
    Ok(load(&mut redis, &headers)
        .await?
        .map_or(MISSING.into(), |(_, _, counter)| counter.to_string()))
}

fn main() -> std::io::Result<()> {
    server_session_bench::serve(|url| async move {
        let client = redis::Client::open(url.as_str()).expect("URL");
        let redis = ConnectionManager::new(client).await.expect("Redis");
        server_session_bench::routes(login, read, incr, counter).with_state(redis)
    })
}
