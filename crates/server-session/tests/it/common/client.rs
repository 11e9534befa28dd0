//! A tiny HTTP/1.1 client for talking to real servers (the examples, the
//! Flask app) over TCP, and a cookie jar that follows their `Set-Cookie`s.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A whole response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every `Set-Cookie`.
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// `GET path` from the server at `addr` (`host:port`).
pub async fn get(addr: &str, path: &str, cookie: Option<&str>) -> Response {
    let mut stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let cookie = cookie
        .filter(|c| !c.is_empty())
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{cookie}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {raw:?}"));
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_owned(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// One browser's cookie for one cookie name, shared by every server it
/// talks to.
#[derive(Debug, Clone, Default)]
pub struct Jar {
    pub name: String,
    pub value: Option<String>,
}

impl Jar {
    pub fn new(name: &str) -> Jar {
        Jar {
            name: name.to_owned(),
            value: None,
        }
    }

    /// The `Cookie` header to send.
    pub fn header(&self) -> Option<String> {
        self.value.as_ref().map(|v| format!("{}={v}", self.name))
    }

    /// Sends `GET path` to `addr` with this cookie and keeps what the
    /// response sets or deletes.
    pub async fn get(&mut self, addr: &str, path: &str) -> Response {
        let response = get(addr, path, self.header().as_deref()).await;
        for set in response.set_cookies() {
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            if name.trim() != self.name {
                continue;
            }
            let deleted = value.is_empty() || attributes.contains("Max-Age=0") || attributes.contains("1970");
            self.value = (!deleted).then(|| value.trim().to_owned());
        }
        response
    }
}
