//! One process a test or benchmark started (a bot or a worker): its log, its scans directory;
//! killed when dropped.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::child_log::collect_stderr;

pub struct Machine {
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    pub scans: PathBuf,
}

impl Machine {
    /// Takes a started child (its stderr piped) and collects its log.
    pub fn new(mut child: Child, scans: PathBuf) -> Machine {
        let log = Arc::new(Mutex::new(String::new()));
        collect_stderr(&mut child, &log);
        Machine {
            child: Some(child),
            log,
            scans,
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, as a deploy stops a machine; its exit status within `within`.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!("no exit within {within:?} of SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The report files (`.json`, not hidden) in its scans directory.
    pub fn reports(&self) -> usize {
        std::fs::read_dir(&self.scans)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.') && n.ends_with(".json"))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Waits until `needle` is in the log (at most `within`).
    pub fn wait_log(&self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no `{needle}` in the log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.kill();
    }
}
