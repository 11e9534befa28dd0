//! `list`, `show`, `revoke`, `revoke-user`, `check` and `gc`.

use serde_json::{Value, json};
use server_session::SessionHandle;
use server_session::admin::{Admin, Examined};
use server_session::store::StoredEntry;

use crate::output::{self, Output};
use crate::{Failure, Outcome};

/// One session as `list` and `show` print it.
fn describe(entry: &StoredEntry, examined: &Examined, show_id: bool) -> Value {
    let mut value = json!({
        "handle": output::name(entry, examined),
        "user": examined.user,
        "size": examined.size,
        "ttl_seconds": entry.ttl.map(|t| t.as_secs()),
        "format": examined.format.map(|f| format!("{f:?}")),
        "permanent": examined.permanent,
        "created": output::unix(examined.created),
        "last_seen": output::unix(examined.last_seen),
        "problem": examined.problem.as_ref().map(ToString::to_string),
    });
    if show_id {
        value["key"] = entry.key.clone().into();
    }
    value
}

pub async fn list(
    admin: &Admin,
    out: &Output,
    batch: usize,
    user: Option<&str>,
    show_ids: bool,
) -> Result<Outcome, Failure> {
    // Only what is printed is kept (not the records), sorted once the walk
    // is over.
    let mut rows = Vec::new();
    output::walk(admin, out, batch, "listing", |entry| {
        let examined = admin.examine(&entry);
        if examined.ended || (examined.problem.is_some() && examined.handle.is_none()) {
            return;
        }
        if user.is_some_and(|user| examined.user.as_deref() != Some(user)) {
            return;
        }
        let mut line = format!(
            "{:<24} {:<20} {:>8} {:>10} {:>12}",
            output::name(&entry, &examined),
            output::escaped(examined.user.as_deref().unwrap_or("-"), false),
            examined.size,
            output::ttl_text(entry.ttl),
            output::ago_text(examined.last_seen),
        );
        if show_ids {
            line.push_str("  ");
            line.push_str(&output::escaped(&entry.key, false));
        }
        let value = describe(&entry, &examined, show_ids);
        rows.push((examined.last_seen, entry.key, value, line));
    })
    .await?;
    rows.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    if !out.json {
        out.emit(&Value::Null, || {
            format!(
                "{:<24} {:<20} {:>8} {:>10} {:>12}",
                "HANDLE", "USER", "BYTES", "TTL", "LAST SEEN"
            )
        })?;
    }
    for (_, _, value, line) in rows {
        out.emit(&value, || line)?;
    }
    Ok(Outcome::Done)
}

/// The record `target` (a cookie value or a handle) names.
async fn find(admin: &Admin, target: &str) -> Result<Option<StoredEntry>, Failure> {
    if admin.key_of_cookie(target).is_none() && target.parse::<SessionHandle>().is_err() {
        return Err(Failure::Input(
            "not a session cookie of this configuration (check SECRET_KEY) nor a session handle".into(),
        ));
    }
    Ok(admin.find(target).await?)
}

pub async fn show(admin: &Admin, out: &Output, target: &str, show_id: bool) -> Result<Outcome, Failure> {
    let Some(entry) = find(admin, target).await? else {
        eprintln!("no such session");
        return Ok(Outcome::Found);
    };
    let examined = admin.examine(&entry);
    let mut value = describe(&entry, &examined, show_id);
    value["data"] = Value::Object(examined.data.clone());
    value["metadata"] = Value::Object(examined.metadata.clone());
    out.emit(&value, || {
        serde_json::to_string_pretty(&value).unwrap_or_default()
    })?;
    Ok(Outcome::Done)
}

pub async fn revoke(admin: &Admin, out: &Output, target: &str) -> Result<Outcome, Failure> {
    let Some(entry) = find(admin, target).await? else {
        eprintln!("no such session");
        return Ok(Outcome::Found);
    };
    let name = output::name(&entry, &admin.examine(&entry));
    let live = admin.end(&entry.key, entry.bytes).await?;
    out.emit(&json!({ "handle": name, "revoked": live }), || match live {
        true => format!("revoked {name}"),
        false => format!("{name} had already ended"),
    })?;
    Ok(Outcome::Done)
}

pub async fn revoke_user(
    admin: &Admin,
    out: &Output,
    user: &str,
    except: &[String],
) -> Result<Outcome, Failure> {
    let except = except
        .iter()
        .map(|h| {
            h.parse::<SessionHandle>()
                .map_err(|_| Failure::Input("an --except value is not a session handle".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let revoked = admin.end_user(user, &except).await?;
    out.emit(&json!({ "user": user, "revoked": revoked }), || {
        format!("revoked {revoked} sessions of {}", output::escaped(user, false))
    })?;
    Ok(Outcome::Done)
}

pub async fn check(
    admin: &Admin,
    out: &Output,
    batch: usize,
    fix: bool,
    show_ids: bool,
) -> Result<Outcome, Failure> {
    let mut found = Vec::new();
    let mut records = 0u64;
    output::walk(admin, out, batch, "checking", |entry| {
        records += 1;
        let examined = admin.examine(&entry);
        if examined.problem.is_some() {
            found.push((entry, examined));
        }
    })
    .await?;
    let mut removed = 0u64;
    for (entry, examined) in &found {
        let problem = examined
            .problem
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        if fix {
            admin.delete(&entry.key).await?;
            removed += 1;
        }
        let mut value = json!({
            "record": output::name(entry, examined),
            "problem": problem,
            "removed": fix,
        });
        if show_ids {
            value["key"] = entry.key.clone().into();
        }
        out.emit(&value, || {
            let key = if show_ids {
                format!(" ({})", output::escaped(&entry.key, false))
            } else {
                String::new()
            };
            let done = if fix { ", removed" } else { "" };
            let problem = output::escaped(&problem, false);
            format!("{}{key}: {problem}{done}", output::name(entry, examined))
        })?;
    }
    let summary = json!({ "records": records, "problems": found.len(), "removed": removed });
    out.emit(&summary, || {
        format!(
            "{records} records checked, {} unusable, {removed} removed",
            found.len()
        )
    })?;
    Ok(match found.len() as u64 == removed {
        true => Outcome::Done,
        false => Outcome::Found,
    })
}

pub async fn gc(admin: &Admin, out: &Output) -> Result<Outcome, Failure> {
    match admin.purge_expired().await? {
        Some(purged) => out.emit(&json!({ "purged": purged }), || {
            format!("removed {purged} expired records")
        })?,
        None => out.emit(
            &json!({ "purged": 0, "note": "the store expires records by itself" }),
            || "nothing to do: this store expires records by itself".into(),
        )?,
    }
    Ok(Outcome::Done)
}
