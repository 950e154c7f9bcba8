//! A process killed (SIGKILL) in the middle of writing a report leaves the old file or none,
//! never a truncated one; the next start removes the dead writer's temp file.
//!
//! The writer is this test binary re-executed as a child (so this target has its own `main`,
//! `harness = false`): it calls the library's `write_atomic` with contents that stop halfway
//! and wait to be killed.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use account_scanner::store::{ReportStore, write_atomic};

const CHILD_DIR: &str = "KILLED_WRITE_CHILD_DIR";

fn main() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        child_writer(Path::new(&dir));
        return;
    }
    killed_while_writing_a_new_report_leaves_no_report();
    println!("test killed_while_writing_a_new_report_leaves_no_report ... ok");
    killed_while_writing_over_an_existing_name_keeps_the_old_file();
    println!("test killed_while_writing_over_an_existing_name_keeps_the_old_file ... ok");
}

/// The child: writes half a report, says so, and waits to be killed.
fn child_writer(dir: &Path) {
    let _ = write_atomic(dir, "alice_20260101T000000.000Z.json", |f| {
        f.write_all(&[b'x'; 64 * 1024])?;
        f.flush()?;
        std::fs::write(dir.join("halfway"), b"")?;
        std::thread::sleep(Duration::from_secs(600));
        f.write_all(b"the rest")
    });
}

fn kill_writer_halfway(dir: &Path) {
    let mut child = Command::new(std::env::current_exe().expect("current exe"))
        .env(CHILD_DIR, dir)
        .spawn()
        .expect("start child writer");
    let started = Instant::now();
    while !dir.join("halfway").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "child never got halfway"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL the writer");
    child.wait().expect("reap");
    std::fs::remove_file(dir.join("halfway")).expect("remove marker");
}

fn killed_while_writing_a_new_report_leaves_no_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    kill_writer_halfway(dir.path());
    let left: Vec<String> = list(dir.path());
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0].starts_with(".alice_20260101T000000.000Z.json.") && left[0].ends_with(".partial"),
        "only a hidden temp file may remain before restart: {left:?}"
    );
    // Restart: opening the store removes the dead writer's temp file.
    ReportStore::open(dir.path()).expect("open store");
    assert_eq!(list(dir.path()), Vec::<String>::new());
}

fn killed_while_writing_over_an_existing_name_keeps_the_old_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("alice_20260101T000000.000Z.json");
    std::fs::write(&target, b"{\"old\":true}\n").expect("old report");
    kill_writer_halfway(dir.path());
    ReportStore::open(dir.path()).expect("open store");
    assert_eq!(list(dir.path()), ["alice_20260101T000000.000Z.json"]);
    assert_eq!(
        std::fs::read(&target).expect("read"),
        b"{\"old\":true}\n",
        "the old file is intact"
    );
}

fn list(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
