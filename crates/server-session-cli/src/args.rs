//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Looks after the sessions of server-session (and Flask-Session) in their
/// store: count them, read one, end them, find and remove the records
/// nobody can use, back them up and move them.
///
/// The store is configured by the same environment variables as the
/// library: SESSION_TYPE (redis, sqlalchemy), SESSION_REDIS,
/// SESSION_REDIS_CLUSTER, SESSION_REDIS_SENTINEL(_MASTER),
/// SQLALCHEMY_DATABASE_URI, SESSION_SQLALCHEMY_TABLE, SESSION_KEY_PREFIX,
/// and SECRET_KEY when cookies are signed.
///
/// Exit codes: 0 done; 1 done, but something was found or left (problem
/// records without --fix, no such session, records that already existed);
/// 2 bad usage or configuration; 3 the store failed.
#[derive(Debug, Parser)]
#[command(name = "server-session", version)]
pub struct Cli {
    /// Print JSON (one object, or one per line for listings) instead of
    /// text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Keys read per store call while walking the records (at most 10,000:
    /// each page is read back in one round trip, within the store's command
    /// timeout).
    #[arg(long, global = true, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,

    /// The application's record limit in bytes, if it set one other than
    /// the library's default (256 KiB): `check` reports, and `--fix`
    /// deletes, the records larger than this.
    #[arg(long, global = true, value_name = "BYTES")]
    pub max_record_size: Option<usize>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// How many sessions there are, how large, how long they have left,
    /// in which format, and how many records are unusable.
    Stats,
    /// The sessions, by handle (or the ones of one user).
    List {
        /// Only the sessions of this user.
        #[arg(long)]
        user: Option<String>,
        /// Also print each session's store key, which holds its id: whoever
        /// reads it can use the session.
        #[arg(long)]
        show_ids: bool,
    },
    /// One session's record, decoded (its data, and its metadata apart).
    Show {
        /// The session's cookie value, or its handle (either may start with
        /// `-`).
        #[arg(allow_hyphen_values = true)]
        session: String,
        /// Also print the store key, which holds the session id.
        #[arg(long)]
        show_id: bool,
    },
    /// Ends one session: its cookie gets a fresh, empty session next time.
    Revoke {
        /// The session's cookie value, or its handle (either may start with
        /// `-`).
        #[arg(allow_hyphen_values = true)]
        session: String,
    },
    /// Ends every session of a user.
    RevokeUser {
        /// The user, as the application logged them in.
        #[arg(allow_hyphen_values = true)]
        user: String,
        /// Keeps the session with this handle (repeatable).
        #[arg(long = "except", value_name = "HANDLE", allow_hyphen_values = true)]
        except: Vec<String>,
    },
    /// Finds the records nobody can use: undecodable, larger than the
    /// record limit (--max-record-size), or keys of another type.
    Check {
        /// Deletes them.
        #[arg(long)]
        fix: bool,
        /// Print the store key of each (it holds the session id).
        #[arg(long)]
        show_ids: bool,
    },
    /// Writes every record as JSON lines: key, record bytes (base64), time
    /// left and expiry (milliseconds). The keys hold the session ids: keep
    /// the file as secret as the store.
    Export {
        /// The file to write (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Reads records written by `export` into this store, with the time
    /// they had left. Every line is checked before any is written (a
    /// session key of this configuration, a record this configuration can
    /// read, at most 400 days left); the file is trusted otherwise, as the
    /// store is: it holds session ids, and sessions bound to users.
    Import {
        /// The file to read (default: standard input).
        #[arg(long, short)]
        input: Option<PathBuf>,
        /// Replaces a record that already exists (by default it is kept,
        /// and the exit code is 1).
        #[arg(long)]
        overwrite: bool,
        /// Leaves out the lines that cannot be imported (they are listed,
        /// and the exit code is 1) instead of importing nothing.
        #[arg(long)]
        skip_invalid: bool,
    },
    /// Removes expired records now (SQL stores; Redis expires keys by
    /// itself).
    Gc,
}
