//! A child process's stderr collected into a shared string (tests and benchmarks read its log).

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::{Arc, Mutex};

/// Appends the child's stderr, line by line, to `log` (from a thread of its own).
pub fn collect_stderr(child: &mut Child, log: &Arc<Mutex<String>>) {
    let sink = log.clone();
    let pipe = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
            s.push_str(&line);
            s.push('\n');
        }
    });
}
