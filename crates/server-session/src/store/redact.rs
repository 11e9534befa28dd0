//! Credentials kept out of what is printed.

/// `url` without its credentials: everything up to the last `@` before the
/// host is hidden, since a password may hold `@` too (and `/`, `?` or `#`
/// when it is not percent-encoded), and so is the value of every query
/// parameter that may carry one (`?password=...`, `sslpassword`, a token,
/// a key).
pub(crate) fn redacted_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let rest = match rest.rsplit_once('@') {
        Some((_, host)) => format!("<credentials>@{host}"),
        None => rest.to_owned(),
    };
    let rest = match rest.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((name, _)) if is_credential(name) => format!("{name}=<redacted>"),
                    _ => param.to_owned(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => rest,
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{rest}"),
        None => rest,
    }
}

/// Whether a URL query parameter may carry a credential.
fn is_credential(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "pwd", "secret", "token", "auth", "key", "credential"]
        .iter()
        .any(|word| name.contains(word))
}
