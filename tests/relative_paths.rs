//! Relative path variables (`SCANS_DIR`, `SHERLOCK_SITES`, `SHERLOCK_BIN`, and `--out`) mean
//! what they say from the directory the binary was started in: the configuration makes them
//! absolute once, before Sherlock runs in a temp dir of its own (where a relative path would
//! point elsewhere).

mod support;

use std::path::Path;

use support::fake_sites::FakeSitesConfig;

/// Report files under `dir`, after checking there is a JSON report among them.
fn reports_in(dir: &Path) -> Vec<String> {
    let files = support::files_in(dir);
    assert!(
        files.iter().any(|f| f.ends_with(".json")),
        "no report in {}: {files:?}",
        dir.display()
    );
    files
}

#[test]
fn a_relative_site_list_and_scans_dir_are_found_from_the_working_directory() {
    let work = support::SitesWorkdir::new(FakeSitesConfig::default());
    let dir = work.dir.path();
    let out = support::scanner(dir)
        .env("SHERLOCK_SITES", "./sites.json")
        .env("SCANS_DIR", "scans")
        .env("SHERLOCK_SITE_TIMEOUT", "1")
        .env("SHERLOCK_CONTROL_CHECK", "false")
        .args(["scan", "alice", "--mode", "sherlock"])
        .output()
        .expect("run scan");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Found on 3 site(s):"), "{stdout}");
    assert!(
        stdout.contains("7 of 7 sites checked · completed"),
        "{stdout}"
    );
    // The files are where SCANS_DIR says, and the summary names them by absolute path.
    for f in reports_in(&dir.join("scans")) {
        let path = dir.join("scans").join(&f);
        assert!(
            stdout.contains(&format!("  {}", path.display())),
            "summary names {}: {stdout}",
            path.display()
        );
    }

    let check = support::scanner(dir)
        .env("SHERLOCK_SITES", "sites.json")
        .env("SCANS_DIR", "./scans")
        .arg("check")
        .output()
        .expect("run check");
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "scans directory: {} (writable",
            dir.join("scans").display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "site list: file {}, 7 sites",
            dir.join("sites.json").display()
        )),
        "{stdout}"
    );
}

#[test]
fn a_relative_sherlock_bin_is_run_from_the_working_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("tools")).expect("mkdir");
    support::script(
        &dir.path().join("tools"),
        "fake-sherlock",
        r#"case "$1" in --version) echo "sherlock v0.16.2"; exit 0;; esac
for a in "$@"; do u="$a"; done
echo "[*] Checking username $u on:"
echo "[+] GitHub: https://github.com/$u"
echo "[*] Search completed with 1 results""#,
    );
    for bin in ["tools/fake-sherlock", "./tools/fake-sherlock"] {
        let out = support::scanner(dir.path())
            .env("SHERLOCK_BIN", bin)
            .env("SHERLOCK_CONTROL_CHECK", "false")
            .args(["scan", "alice", "--mode", "sherlock", "--json"])
            .args(["--out", "reports"])
            .output()
            .expect("run scan");
        let report = support::stdout_json(&out);
        assert_eq!(
            report["sherlock"]["status"], "completed",
            "SHERLOCK_BIN={bin}: {report}"
        );
        assert_eq!(report["sherlock"]["counts"]["claimed"], 1, "{report}");
        assert_eq!(report["tools"]["sherlock"], "0.16.2", "{report}");
        assert_eq!(out.status.code(), Some(0));

        let check = support::scanner(dir.path())
            .env("SHERLOCK_BIN", bin)
            .arg("check")
            .output()
            .expect("run check");
        let stdout = String::from_utf8_lossy(&check.stdout);
        assert!(
            stdout.contains(&format!(
                "sherlock: {} 0.16.2 (from SHERLOCK_BIN",
                dir.path().join("tools/fake-sherlock").display()
            )),
            "{stdout}"
        );
    }
    // `--out reports`, relative too, is where both scans went.
    assert_eq!(reports_in(&dir.path().join("reports")).len(), 4);
}
