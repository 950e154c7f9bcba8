//! Facts about this process and machine that `check` and `health` report.

use std::path::Path;

/// Bytes free for this user on the file system holding `dir`.
pub fn free_space(dir: &Path) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(dir).ok()?;
    Some(st.blocks_available() as u64 * st.fragment_size() as u64)
}

/// This machine's name (on fly.io, the machine's id), Linux only.
pub fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// This process's resident memory (VmRSS), Linux only.
pub fn process_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The memory this process's machine or cgroup may use: the cgroup v2 `memory.max` when it is
/// a number, else the machine's `MemTotal` (whichever is lower when both are known). Linux only.
pub fn memory_limit() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let total = mem_total();
    match (cgroup, total) {
        (Some(c), Some(t)) => Some(c.min(t)),
        (c, t) => c.or(t),
    }
}

#[cfg(target_os = "linux")]
fn mem_total() -> Option<u64> {
    use procfs::Current;
    procfs::Meminfo::current().ok().map(|m| m.mem_total)
}

#[cfg(not(target_os = "linux"))]
fn mem_total() -> Option<u64> {
    None
}

pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        assert!(process_rss().is_some_and(|b| b > 1024 * 1024));
        assert!(free_space(Path::new(".")).is_some());
        let limit = memory_limit().expect("a memory limit");
        assert!(limit > process_rss().unwrap_or(0), "{limit}");
        assert_eq!(human_bytes(1536), "1.5 KB");
    }
}
