//! A small filesystem of the storage drills' own: a tmpfs that can be filled or made read-only
//! (`chmod` cannot make a directory read-only for root; a read-only mount can).
//!
//! Mounting needs root. Without it, [`with_mount_rights`] re-runs the drill inside
//! `unshare --user --map-root-user --mount`, where it may mount; when neither works the drill
//! fails saying why (it is never skipped silently).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

/// Set when a drill runs re-executed inside a user and mount namespace.
const IN_NAMESPACE: &str = "ACCOUNT_SCANNER_DRILLS_IN_NAMESPACE";

/// A tmpfs of `size_kb` mounted on `<temp dir>/scans`; unmounted when dropped.
pub struct Tmpfs {
    _parent: tempfile::TempDir,
    dir: PathBuf,
}

fn mount(args: &[&str]) -> Output {
    Command::new("mount")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `mount` for a storage drill: {e}"))
}

fn try_mount(path: &Path, size_kb: u64) -> Result<(), String> {
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size_kb}k"), "tmpfs"])
        .arg(path)
        .output()
        .map_err(|e| format!("mount could not run: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(())
}

fn unmount(path: &Path) {
    let ok = Command::new("umount")
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        // Still busy (a child holding a file open): detach it now, freed when released.
        let _ = Command::new("umount").arg("-l").arg(path).status();
    }
}

impl Tmpfs {
    pub fn new(size_kb: u64) -> Tmpfs {
        let parent = tempfile::tempdir().expect("tempdir");
        let dir = parent.path().join("scans");
        std::fs::create_dir(&dir).expect("mount point");
        if let Err(e) = try_mount(&dir, size_kb) {
            panic!(
                "the storage drills need to mount a tmpfs (run them as root, or where \
                 `unshare --user --map-root-user --mount` is allowed): {e}"
            );
        }
        Tmpfs {
            _parent: parent,
            dir,
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn read_only(&self) {
        self.remount("ro");
    }

    pub fn read_write(&self) {
        self.remount("rw");
    }

    /// A bind remount (it also works inside a user namespace, where a plain `remount,ro` does
    /// not). Making it read-only fails as busy while a file on it is open for writing: retried
    /// briefly.
    fn remount(&self, option: &str) {
        let dir = self.dir.display().to_string();
        let flags = format!("remount,bind,{option}");
        let args = ["-o", flags.as_str(), dir.as_str()];
        let mut out = mount(&args);
        for _ in 0..20 {
            if out.status.success() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
            out = mount(&args);
        }
        assert!(
            out.status.success(),
            "{flags} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        unmount(&self.dir);
    }
}

/// Runs `body` where mounting a tmpfs is allowed: here when we may mount, else the test named
/// `test` re-executed inside `unshare --user --map-root-user --mount`.
pub fn with_mount_rights(test: &str, body: impl FnOnce()) {
    static CAN_MOUNT: OnceLock<Result<(), String>> = OnceLock::new();
    let can = CAN_MOUNT.get_or_init(|| {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        try_mount(dir.path(), 64)?;
        unmount(dir.path());
        Ok(())
    });
    if can.is_ok() || std::env::var_os(IN_NAMESPACE).is_some() {
        body();
        return;
    }
    let why_not_mount = can.as_ref().err().cloned().unwrap_or_default();
    let probe = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "true"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "this drill needs a tmpfs of its own: mount is not permitted ({why_not_mount}) and \
             `unshare --user --map-root-user --mount` failed ({}): run the tests as root or allow \
             unprivileged user namespaces",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!(
            "this drill needs a tmpfs of its own: mount is not permitted ({why_not_mount}) and \
             `unshare` could not run ({e}): run the tests as root or install util-linux"
        ),
    }
    let exe = std::env::current_exe().expect("current test executable");
    let status = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount"])
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(IN_NAMESPACE, "1")
        .status()
        .expect("run the drill inside unshare");
    assert!(
        status.success(),
        "the drill failed inside a user+mount namespace"
    );
}
