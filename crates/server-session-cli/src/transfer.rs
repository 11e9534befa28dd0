//! `export` and `import`: records as JSON lines, one per record:
//! `{"key": ..., "record": base64 bytes, "ttl_ms": milliseconds left or
//! null, "expires_at_ms": Unix milliseconds or null}`. An import gives each
//! record the expiry it had (`expires_at_ms`, else `ttl_ms` from the
//! import), so a record moved later still expires when it would have.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use server_session::admin::Admin;
use server_session::store::StoredEntry;
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::task::JoinSet;

use crate::output::{self, Output};
use crate::{Failure, Outcome};

/// Records written at once by an import.
const IN_FLIGHT: usize = 64;

/// Milliseconds since the Unix epoch.
fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One exported line, for a record read at `now`.
fn line(entry: &StoredEntry, bytes: &[u8], now: SystemTime) -> String {
    let ttl = entry.ttl.map(|t| t.as_millis() as u64);
    let expires = entry.ttl.and_then(|t| now.checked_add(t)).map(unix_ms);
    json!({ "key": entry.key, "record": STANDARD.encode(bytes), "ttl_ms": ttl, "expires_at_ms": expires })
        .to_string()
}

/// A record from an exported line, with the time it has left at `now`
/// (`None` for one that has expired since).
fn parse(text: &str, now: SystemTime) -> Result<Option<StoredEntry>, String> {
    let value: Value = serde_json::from_str(text).map_err(|err| err.to_string())?;
    let key = value["key"].as_str().ok_or("no \"key\"")?;
    let record = value["record"].as_str().ok_or("no \"record\"")?;
    let bytes = STANDARD
        .decode(record)
        .map_err(|err| format!("\"record\": {err}"))?;
    let number = |name: &str| match &value[name] {
        Value::Null => Ok(None),
        n => n.as_u64().map(Some).ok_or(format!("\"{name}\" is not a number")),
    };
    let ttl = match (number("expires_at_ms")?, number("ttl_ms")?) {
        (Some(at), _) => match at.checked_sub(unix_ms(now)) {
            Some(left) if left > 0 => Some(Duration::from_millis(left)),
            _ => return Ok(None),
        },
        (None, ttl) => ttl.map(Duration::from_millis),
    };
    Ok(Some(StoredEntry::new(key, Some(bytes), ttl)))
}

pub async fn export(
    admin: &Admin,
    out: &Output,
    batch: usize,
    path: Option<&Path>,
) -> Result<Outcome, Failure> {
    // A file is written beside its final name, readable by its owner only
    // (it holds session ids), and takes that name once complete: a failed
    // export leaves an earlier one in place.
    let partial = path.map(|path| {
        let mut name = path.as_os_str().to_owned();
        name.push(".partial");
        std::path::PathBuf::from(name)
    });
    let sink: Box<dyn AsyncWrite + Unpin + Send> = match &partial {
        Some(partial) => {
            let mut options = tokio::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            options.mode(0o600);
            Box::new(options.open(partial).await?)
        }
        None => Box::new(tokio::io::stdout()),
    };
    let mut sink = BufWriter::new(sink);
    let (mut lines, mut skipped) = (Vec::new(), 0u64);
    let mut exported = 0u64;
    let bar = out.progress("exporting");
    let mut cursor = server_session::store::ScanCursor::start();
    loop {
        let page = admin.scan(&cursor, batch).await?;
        let now = SystemTime::now();
        for entry in &page.entries {
            match &entry.bytes {
                Some(bytes) => lines.push(line(entry, bytes, now)),
                None => skipped += 1,
            }
        }
        bar.inc(page.entries.len() as u64);
        for text in lines.drain(..) {
            sink.write_all(text.as_bytes()).await?;
            sink.write_all(b"\n").await?;
            exported += 1;
        }
        match page.next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    sink.flush().await?;
    drop(sink);
    if let (Some(partial), Some(path)) = (&partial, path) {
        tokio::fs::rename(partial, path).await?;
    }
    bar.finish_and_clear();
    let summary = json!({ "exported": exported, "skipped_other_types": skipped });
    // The records went to standard output: the summary goes to standard
    // error.
    let text = match out.json {
        true => summary.to_string(),
        false => format!("exported {exported} records ({skipped} keys of another type skipped)"),
    };
    eprintln!("{text}");
    Ok(Outcome::Done)
}

/// Bad lines named at most in an error.
const BAD_LINES_SHOWN: usize = 20;

/// The longest a user name may be in an imported record.
const MAX_USER: usize = 1024;

/// Why the record `entry` cannot be imported into `admin`'s store, if it
/// cannot: a key that is no session key of this configuration, a record it
/// could not read back (undecodable, over the size limit), a time left
/// beyond what a session may have, or a user binding no login makes.
fn refusal(admin: &Admin, entry: &StoredEntry) -> Option<String> {
    if !entry.key.starts_with(admin.prefix()) {
        return Some(format!(
            "the key is not under this configuration's prefix {:?} (SESSION_KEY_PREFIX)",
            admin.prefix()
        ));
    }
    if !admin.is_session_key(&entry.key) {
        return Some(
            "the key holds no session id of this configuration (SESSION_ID_LENGTH, SESSION_HASH_IDS)".into(),
        );
    }
    let examined = admin.examine(entry);
    if let Some(problem) = &examined.problem {
        return Some(format!("the record is {problem}"));
    }
    if entry
        .ttl
        .is_some_and(|ttl| ttl > server_session::SessionConfig::MAX_LIFETIME)
    {
        return Some("the record has more than 400 days left, more than any session may".into());
    }
    match examined.user.as_deref() {
        Some(user) if user.is_empty() || user.len() > MAX_USER || user.chars().any(char::is_control) => Some(
            "the record is bound to a user name no login gives (empty, too long, or with control characters)"
                .into(),
        ),
        _ => None,
    }
}

/// A record to import, and when it expires (`None`: it never did), so that
/// its time left is taken when it is written, however long the reading took.
type ToWrite = (StoredEntry, Option<Instant>);

/// The records of an export, every line checked: the ones to write, the
/// number of those that had expired, and the bad lines by number.
async fn read_lines(
    admin: &Admin,
    source: impl tokio::io::AsyncRead + Unpin,
) -> Result<(Vec<ToWrite>, u64, Vec<(u64, String)>), Failure> {
    let mut lines = BufReader::new(source).lines();
    let (mut entries, mut expired, mut bad) = (Vec::new(), 0u64, Vec::new());
    // A walk may return a key twice, so an export may hold it twice.
    let mut seen = std::collections::HashSet::new();
    let mut number = 0u64;
    while let Some(text) = lines.next_line().await? {
        number += 1;
        if text.trim().is_empty() {
            continue;
        }
        let entry = match parse(&text, SystemTime::now()) {
            Ok(Some(entry)) => entry,
            Ok(None) => {
                expired += 1;
                continue;
            }
            Err(why) => {
                bad.push((number, why));
                continue;
            }
        };
        if let Some(why) = refusal(admin, &entry) {
            bad.push((number, why));
        } else if seen.insert(entry.key.clone()) {
            let expires = entry.ttl.map(|ttl| Instant::now() + ttl);
            entries.push((entry, expires));
        }
    }
    Ok((entries, expired, bad))
}

pub async fn import(
    admin: &Admin,
    out: &Output,
    path: Option<&Path>,
    overwrite: bool,
    skip_invalid: bool,
) -> Result<Outcome, Failure> {
    let source: Box<dyn tokio::io::AsyncRead + Unpin + Send> = match path {
        Some(path) => Box::new(tokio::fs::File::open(path).await?),
        None => Box::new(tokio::io::stdin()),
    };
    // Every line is read and checked before anything is written: a bad
    // file writes nothing, unless told to leave its bad lines out.
    let (entries, expired, bad) = read_lines(admin, source).await?;
    if !bad.is_empty() {
        let shown: Vec<String> = bad
            .iter()
            .take(BAD_LINES_SHOWN)
            .map(|(number, why)| format!("line {number}: {}", output::escaped(why, false)))
            .collect();
        let more = match bad.len() > BAD_LINES_SHOWN {
            true => format!("; and {} more", bad.len() - BAD_LINES_SHOWN),
            false => String::new(),
        };
        if !skip_invalid {
            return Err(Failure::Input(format!(
                "{} lines cannot be imported, so nothing was (--skip-invalid imports the others): {}{more}",
                bad.len(),
                shown.join("; ")
            )));
        }
        eprintln!("left out {} lines: {}{more}", bad.len(), shown.join("; "));
    }
    let bar = out.progress("importing");
    let mut writes = JoinSet::new();
    let (mut written, mut kept) = (0u64, 0u64);
    let mut settle = |done: Result<Result<bool, server_session::SessionError>, tokio::task::JoinError>| {
        match done
            .map_err(|err| Failure::Io(std::io::Error::other(format!("an import task failed: {err}"))))??
        {
            true => written += 1,
            false => kept += 1,
        }
        bar.inc(1);
        Ok::<_, Failure>(())
    };
    let mut expired = expired;
    for (mut entry, expires) in entries {
        if let Some(expires) = expires {
            match expires.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => entry.ttl = Some(left),
                _ => {
                    expired += 1;
                    continue;
                }
            }
        }
        if writes.len() >= IN_FLIGHT
            && let Some(done) = writes.join_next().await
        {
            settle(done)?;
        }
        let admin = admin.clone();
        writes.spawn(async move { admin.put(&entry, overwrite).await });
    }
    while let Some(done) = writes.join_next().await {
        settle(done)?;
    }
    bar.finish_and_clear();
    let invalid = bad.len();
    out.emit(
        &json!({ "imported": written, "kept_existing": kept, "expired": expired, "invalid": invalid }),
        || {
            format!(
                "imported {written} records; {kept} already existed and were kept; {expired} had expired; \
                 {invalid} lines left out"
            )
        },
    )?;
    Ok(match (kept, invalid) {
        (0, 0) => Outcome::Done,
        _ => Outcome::Found,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_with_their_expiry() {
        let now = SystemTime::now();
        let entry = StoredEntry::new(
            "session:abc",
            Some(vec![0x81, 0xa1, b'a', 1]),
            Some(Duration::from_secs(90)),
        );
        let text = line(&entry, entry.bytes.as_deref().unwrap(), now);
        assert_eq!(parse(&text, now).unwrap(), Some(entry.clone()));
        let later = parse(&text, now + Duration::from_secs(30)).unwrap().unwrap();
        assert_eq!(
            later.ttl,
            Some(Duration::from_secs(60)),
            "the expiry stays where it was"
        );
        assert_eq!(
            parse(&text, now + Duration::from_secs(90)).unwrap(),
            None,
            "an expired record"
        );
        let forever = StoredEntry::new("session:x", Some(vec![0x80]), None);
        assert_eq!(parse(&line(&forever, &[0x80], now), now).unwrap(), Some(forever));
        let old = "{\"key\": \"k\", \"record\": \"gA==\", \"ttl_ms\": 5000}";
        assert_eq!(
            parse(old, now).unwrap().unwrap().ttl,
            Some(Duration::from_secs(5))
        );
        assert!(parse("{\"key\": \"k\"}", now).is_err());
        assert!(parse("not json", now).is_err());
    }
}
