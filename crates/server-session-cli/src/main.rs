//! `server-session`: the operator tool of the server-session library. See
//! `server-session --help`.

mod args;
mod commands;
mod output;
mod stats;
mod transfer;

use std::process::ExitCode;

use clap::Parser;
use server_session::SessionConfig;
use server_session::admin::Admin;

use args::{Cli, Command};

/// Why a command failed, and its exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The configuration is wrong (2).
    #[error("configuration: {0}")]
    Config(#[from] server_session::ConfigError),
    /// Bad input: a handle, a file, a line of an import (2).
    #[error("{0}")]
    Input(String),
    /// The store failed (3).
    #[error("{0}")]
    Store(#[from] server_session::SessionError),
    /// Reading or writing a file or a stream failed (3).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::Config(_) | Failure::Input(_) => 2,
            Failure::Store(_) | Failure::Io(_) => 3,
        }
    }
}

/// What a command that ran tells the shell: all done (0), or done with
/// something found or left (1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Found,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(3);
        }
    };
    // An export cut short is a failure; a listing whose reader went away
    // (`| head`) has nothing more to say.
    let exporting = matches!(cli.command, Command::Export { .. });
    match runtime.block_on(run(cli)) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Found) => ExitCode::from(1),
        Err(Failure::Io(err)) if err.kind() == std::io::ErrorKind::BrokenPipe && !exporting => {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {}", output::escaped(&err.to_string(), false));
            ExitCode::from(err.code())
        }
    }
}

async fn run(cli: Cli) -> Result<Outcome, Failure> {
    let mut config = SessionConfig::from_env()?;
    if let Some(limit) = cli.max_record_size {
        config = config.max_record_size(limit);
    }
    let kind = std::env::var("SESSION_TYPE").unwrap_or_default();
    if matches!(kind.trim(), "" | "memory") {
        return Err(Failure::Input(
            "SESSION_TYPE is not redis or sqlalchemy: a memory store lives inside the application, \
             and this tool reads the store the application shares"
                .into(),
        ));
    }
    let admin = Admin::from_config(config)?;
    let out = output::Output::new(cli.json);
    let batch = cli.batch as usize;
    match cli.command {
        Command::Stats => stats::run(&admin, &out, batch).await,
        Command::List { user, show_ids } => {
            commands::list(&admin, &out, batch, user.as_deref(), show_ids).await
        }
        Command::Show { session, show_id } => commands::show(&admin, &out, &session, show_id).await,
        Command::Revoke { session } => commands::revoke(&admin, &out, &session).await,
        Command::RevokeUser { user, except } => commands::revoke_user(&admin, &out, &user, &except).await,
        Command::Check { fix, show_ids } => commands::check(&admin, &out, batch, fix, show_ids).await,
        Command::Export { output } => transfer::export(&admin, &out, batch, output.as_deref()).await,
        Command::Import {
            input,
            overwrite,
            skip_invalid,
        } => transfer::import(&admin, &out, input.as_deref(), overwrite, skip_invalid).await,
        Command::Gc => commands::gc(&admin, &out).await,
    }
}
