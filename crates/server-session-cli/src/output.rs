//! What the commands print: text or JSON on standard output, a progress
//! bar on a terminal's standard error (nothing on a pipe), and names for
//! records that never show a session id.

use std::borrow::Cow;
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

    /// Prints `value` as one JSON line, or `text` for a person, its
    /// control characters escaped but for the line breaks it lays out
    /// (values from the store that go into it are escaped whole, with
    /// [`escaped`]).
    pub fn emit(&self, value: &Value, text: impl FnOnce() -> String) -> Result<(), Failure> {
        let mut stdout = std::io::stdout().lock();
        match self.json {
            true => writeln!(stdout, "{value}")?,
            false => writeln!(stdout, "{}", escaped(&text(), true))?,
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

/// `text` with its control characters written as escapes (`\u{1b}`), and
/// the characters that reorder text on screen too, so that a value from the
/// store (a user name, a key) cannot move the cursor, clear the screen,
/// retitle the terminal or start a line of its own; line breaks are kept
/// with `keep_newlines`, for text this tool lays out itself.
pub fn escaped(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && !(keep_newlines && c == '\n'))
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match unsafe_char(c) {
            true => out.extend(c.escape_unicode()),
            false => out.push(c),
        }
    }
    Cow::Owned(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escaped("alice", false), "alice");
        assert_eq!(
            escaped("a\u{1b}]0;owned\u{7}\nforged\r\u{9b}2J\u{202e}", false),
            "a\\u{1b}]0;owned\\u{7}\\u{a}forged\\u{d}\\u{9b}2J\\u{202e}"
        );
        assert_eq!(escaped("one\ntwo\u{1b}", true), "one\ntwo\\u{1b}");
    }
}
