//! The operator's health endpoint from a test: a free port, a plain HTTP/1.1 GET, waiting for a
//! status.
#![allow(dead_code)]

use std::net::TcpListener;
use std::time::Duration;

use super::bot::WAIT;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A tiny HTTP/1.1 GET (the endpoint is plain HTTP on 127.0.0.1).
pub fn get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

pub fn wait_for_status(port: u16, path: &str, want: u16) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            drop(stream);
            let (status, body) = get(port, path);
            if status == want {
                return body;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path} never answered {want}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
