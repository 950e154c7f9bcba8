//! What the fake API servers share: an axum app on 127.0.0.1 served from its own thread and
//! runtime (so plain `#[test]`s and `#[tokio::test]`s can both use it), and a request log.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::{Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::Router;
use tokio::sync::oneshot;

/// The status a fake answers to a request it does not expect, so the client fails loudly.
pub const UNEXPECTED_STATUS: u16 = 599;

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// When it arrived.
    pub when: Instant,
    pub status: u16,
    /// Why the fake did not expect it (answered with 599).
    pub unexpected: Option<String>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a fake API's handler shares with the test: its configuration, the request log and the
/// fault controls the test sets.
pub struct Shared<C, K> {
    pub cfg: C,
    pub log: Log,
    controls: Mutex<K>,
}

impl<C, K: Default> Shared<C, K> {
    pub fn new(cfg: C) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Shared {
            cfg,
            log: Log::default(),
            controls: Mutex::new(K::default()),
        })
    }
}

impl<C, K> Shared<C, K> {
    pub fn controls(&self) -> MutexGuard<'_, K> {
        self.controls.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
pub struct Log(Mutex<Vec<Recorded>>);

impl Log {
    pub fn lock(&self) -> MutexGuard<'_, Vec<Recorded>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn push(&self, r: Recorded) {
        if let Some(why) = &r.unexpected {
            eprintln!(
                "FAKE SERVER: unexpected request {} {} ({why})",
                r.method, r.path
            );
        }
        self.lock().push(r);
    }
}

/// Parses `a=1&b=x%20y` (and `+` as space).
pub fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Headers as lowercase (name, value) pairs.
pub fn header_pairs(headers: &axum::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The largest number of instants inside any half-open window `[t, t + window)`.
pub fn max_in_window(times: &[Instant], window: Duration) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort();
    let mut best = 0;
    for (i, start) in sorted.iter().enumerate() {
        let n = sorted[i..]
            .iter()
            .take_while(|t| t.duration_since(*start) < window)
            .count();
        best = best.max(n);
    }
    best
}

/// An axum app served on 127.0.0.1 from a dedicated thread; stopped when dropped.
pub struct Server {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(name: &str, app: Router) -> Server {
        let listener = StdTcpListener::bind("127.0.0.1:0").expect("fake server: bind");
        listener
            .set_nonblocking(true)
            .expect("fake server: set_nonblocking");
        let addr = listener.local_addr().expect("fake server: local_addr");
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel::<std::io::Result<()>>();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let server = tokio::spawn(async move { axum::serve(listener, app).await });
                    let _ = ready_tx.send(Ok(()));
                    let _ = shutdown_rx.await;
                    server.abort();
                });
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("fake server: spawn thread");
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("fake server {name}: failed to start: {e}"),
            Err(_) => panic!("fake server {name}: thread died during startup"),
        }
        Server {
            addr,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    /// "http://127.0.0.1:PORT" (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Standard base64 (for checking HTTP Basic credentials without another dependency).
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A 200 answer carrying `body` as-is (a fake's "answer garbage" fault), typed as HTML when it
/// looks like a page and as JSON otherwise, as a misbehaving API or a proxy in front of it would.
pub fn garbage(body: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let kind = if body.trim_start().starts_with('<') {
        "text/html; charset=utf-8"
    } else {
        "application/json; charset=UTF-8"
    };
    (
        axum::http::StatusCode::OK,
        [("content-type", kind)],
        body.to_string(),
    )
        .into_response()
}

/// A 200 JSON answer of `prefix`, then `padding` spaces, then `suffix`: as large as asked (the
/// 100 MB drills) but generated while it is sent, 64 KiB at a time, never held in memory; sent
/// chunked, without a `Content-Length`, as a runaway server or proxy would. The padding is JSON
/// whitespace, so a client that reads it all parses it fine: only a cap on the body stops it.
pub fn huge_json(
    prefix: &'static str,
    padding: u64,
    suffix: &'static str,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use tokio::io::AsyncReadExt;
    let reader = prefix
        .as_bytes()
        .chain(tokio::io::repeat(b' ').take(padding))
        .chain(suffix.as_bytes());
    let stream = tokio_util::io::ReaderStream::with_capacity(reader, 64 * 1024);
    (
        axum::http::StatusCode::OK,
        [("content-type", "application/json; charset=UTF-8")],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}
