//! A small filesystem of the storage drills' own: a tmpfs that can be filled or made read-only
//! (`chmod` cannot make a directory read-only for root; a read-only mount can).
//!
//! Mounting needs root. Without it, [`with_mount_rights`] re-runs the drill inside
//! `unshare --user --map-root-user --mount`, where it may mount; when neither works the drill
//! fails saying why (it is never skipped silently). [`Tmpfs::new`] panics outside
//! [`with_mount_rights`], so no drill can forget the fallback.
//!
//! `ACCOUNT_SCANNER_DRILLS_FORCE_UNSHARE=1` takes the fallback even where a plain mount works
//! (as root), to check the fallback itself.
#![allow(dead_code)]

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

/// Set when a drill runs re-executed inside a user and mount namespace.
const IN_NAMESPACE: &str = "ACCOUNT_SCANNER_DRILLS_IN_NAMESPACE";
/// Set to take the `unshare` fallback even where mounting is allowed.
const FORCE_UNSHARE: &str = "ACCOUNT_SCANNER_DRILLS_FORCE_UNSHARE";

thread_local! {
    /// True while a [`with_mount_rights`] body runs on this thread.
    static MOUNT_RIGHTS: Cell<bool> = const { Cell::new(false) };
}

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
    /// Must be called inside [`with_mount_rights`] (it panics otherwise).
    pub fn new(size_kb: u64) -> Tmpfs {
        assert!(
            MOUNT_RIGHTS.with(Cell::get),
            "Tmpfs::new outside tmpfs::with_mount_rights: wrap the drill in it, so it also runs \
             where only `unshare --user --mount` may mount"
        );
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
        if std::env::var_os(FORCE_UNSHARE).is_some() {
            return Err(format!("{FORCE_UNSHARE} is set"));
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        try_mount(dir.path(), 64)?;
        unmount(dir.path());
        Ok(())
    });
    if can.is_ok() || std::env::var_os(IN_NAMESPACE).is_some() {
        /// Clears the flag however `body` ends (a failing drill panics).
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                MOUNT_RIGHTS.with(|m| m.set(false));
            }
        }
        MOUNT_RIGHTS.with(|m| m.set(true));
        let _reset = Reset;
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
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount"])
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(IN_NAMESPACE, "1")
        .output()
        .expect("run the drill inside unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("--- the drill inside unshare ---\n{stdout}{stderr}--- end ---");
    assert!(
        out.status.success(),
        "the drill failed inside a user+mount namespace"
    );
    // A name that matches no test would "pass" with nothing run.
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "`{test}` did not run inside the namespace (is it the test's exact name?)"
    );
}
