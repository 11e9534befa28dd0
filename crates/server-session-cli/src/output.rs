//! What the commands print: text or JSON on standard output, a progress
//! bar on a terminal's standard error (nothing on a pipe), and names for
//! records that never show a session id.

use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use server_session::admin::{Admin, Examined};
use server_session::store::StoredEntry;
use sha2::{Digest, Sha256};

use crate::Failure;

/// Where results go, and in which form.
pub struct Output {
    pub json: bool,
}

impl Output {
    pub fn new(json: bool) -> Output {
        Output { json }
    }

    /// Prints `value` as one JSON line, or `text` for a person.
    pub fn emit(&self, value: &Value, text: impl FnOnce() -> String) -> Result<(), Failure> {
        let mut stdout = std::io::stdout().lock();
        match self.json {
            true => writeln!(stdout, "{value}")?,
            false => writeln!(stdout, "{}", text())?,
        }
        Ok(())
    }

    /// A progress bar counting records, drawn only on a terminal.
    pub fn progress(&self, what: &'static str) -> ProgressBar {
        if !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}: {human_pos} records ({per_sec}, {elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(what);
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

/// Walks every record under the prefix, with a progress bar.
pub async fn walk(
    admin: &Admin,
    out: &Output,
    batch: usize,
    what: &'static str,
    mut each: impl FnMut(StoredEntry),
) -> Result<(), Failure> {
    let bar = out.progress(what);
    admin
        .walk(batch, |entry| {
            bar.inc(1);
            each(entry);
            true
        })
        .await?;
    bar.finish_and_clear();
    Ok(())
}

/// How a record is named in output: its session's handle, or for a record
/// that has none (undecodable, another type), a hash of its key. Neither
/// can be used as a cookie.
pub fn name(entry: &StoredEntry, examined: &Examined) -> String {
    match &examined.handle {
        Some(handle) => handle.to_string(),
        None => {
            let digest = Sha256::digest(entry.key.as_bytes());
            let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            format!("key#{hex}")
        }
    }
}

/// Seconds since the Unix epoch, for JSON.
pub fn unix(time: Option<SystemTime>) -> Value {
    time.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(Value::Null, |d| d.as_secs().into())
}

/// A time to live for a person: `41m 3s`, `2d 4h`, `never`.
pub fn ttl_text(ttl: Option<Duration>) -> String {
    let Some(ttl) = ttl else {
        return "never".into();
    };
    let secs = ttl.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {}h", secs / 86400, secs % 86400 / 3600),
    }
}

/// A time as seconds ago, for a person.
pub fn ago_text(time: Option<SystemTime>) -> String {
    match time.and_then(|t| SystemTime::now().duration_since(t).ok()) {
        Some(ago) => format!("{} ago", ttl_text(Some(ago))),
        None => "-".into(),
    }
}
