//! Finding Sherlock, and installing the pinned version into a managed virtualenv.
//!
//! Order: `SHERLOCK_BIN` if set; else `sherlock` on `PATH`; else the managed venv in the
//! user's data directory (`account-scanner setup` creates it). Where that is, and which Python
//! builds it, come from the configuration (`XDG_DATA_HOME`, `PYTHON`); every child process
//! (`--version`, the venv, pip) starts from [`super::child_env::command`].

use std::fs;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::LazyLock;

use tokio::process::Command;

use super::child_env::{self, Child};
use crate::config::SherlockConfig;

/// The pinned requirements, the one source of truth shared with the tests and the Dockerfile.
pub const REQUIREMENTS: &str = include_str!("../../../sherlock/requirements.txt");

/// The sherlock-project version pinned in `sherlock/requirements.txt`.
pub fn pinned_version() -> &'static str {
    static VERSION: LazyLock<String> = LazyLock::new(|| {
        REQUIREMENTS
            .lines()
            .find_map(|l| l.trim().strip_prefix("sherlock-project=="))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| "unknown".to_string())
    });
    &VERSION
}

/// Where a Sherlock executable came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// `SHERLOCK_BIN`.
    Configured,
    /// `sherlock` found on `PATH`.
    Path,
    /// The venv `account-scanner setup` manages.
    Managed,
}

impl Origin {
    pub fn describe(self) -> &'static str {
        match self {
            Origin::Configured => "SHERLOCK_BIN",
            Origin::Path => "PATH",
            Origin::Managed => "managed virtualenv",
        }
    }
}

/// A Sherlock that can be run.
#[derive(Debug, Clone)]
pub struct SherlockInstall {
    pub program: PathBuf,
    pub origin: Origin,
    /// Known without running Sherlock when it lives in a venv (from its dist-info).
    pub version: Option<String>,
    /// The `data.json` bundled with this Sherlock (what `--local` reads), when it can be found.
    pub bundled_list: Option<PathBuf>,
    /// The Python behind a PATH or managed `sherlock` script (its shebang), which runs the
    /// project's launcher. `None` for `SHERLOCK_BIN`, which is run exactly as given.
    pub interpreter: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("SHERLOCK_BIN is set to {}, but {reason}", .path.display())]
    BadConfiguredBin { path: PathBuf, reason: &'static str },
    #[error(
        "cannot create the Sherlock virtualenv: `{python}` was not found. Install Python 3 (3.9 or newer) or set SHERLOCK_BIN"
    )]
    NoPython { python: String },
    #[error(
        "no data directory is known for this user (neither XDG_DATA_HOME nor HOME is set); set one of them, or SHERLOCK_BIN"
    )]
    NoDataDir,
    #[error("{step} failed ({status}); {hint}")]
    StepFailed {
        step: &'static str,
        status: String,
        hint: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> InstallError {
    let context = context.into();
    move |source| InstallError::Io { context, source }
}

/// Finds Sherlock without installing anything. `Ok(None)` means: run [`setup`].
pub fn locate(config: &SherlockConfig) -> Result<Option<SherlockInstall>, InstallError> {
    if let Some(path) = config.bin.as_deref() {
        if !path.exists() {
            return Err(InstallError::BadConfiguredBin {
                path: path.to_path_buf(),
                reason: "that file does not exist",
            });
        }
        if !is_executable(path) {
            return Err(InstallError::BadConfiguredBin {
                path: path.to_path_buf(),
                reason: "it is not an executable file",
            });
        }
        return Ok(Some(describe(path.to_path_buf(), Origin::Configured)));
    }
    if let Some(found) = find_on_path("sherlock") {
        return Ok(Some(describe(found, Origin::Path)));
    }
    Ok(managed_install(config))
}

/// The managed venv, if `setup` finished installing it.
pub fn managed_install(config: &SherlockConfig) -> Option<SherlockInstall> {
    let dir = managed_venv_dir(config)?;
    let program = dir.join("bin").join("sherlock");
    (dir.join(READY_MARKER).is_file() && is_executable(&program))
        .then(|| describe(program, Origin::Managed))
}

const READY_MARKER: &str = ".account-scanner-ready";

/// `<data dir>/account-scanner/sherlock-<pinned version>`; a new pin gets a new venv.
pub fn managed_venv_dir(config: &SherlockConfig) -> Option<PathBuf> {
    config.data_dir.as_ref().map(|d| {
        d.join("account-scanner")
            .join(format!("sherlock-{}", pinned_version()))
    })
}

fn describe(program: PathBuf, origin: Origin) -> SherlockInstall {
    let site_packages = site_packages_of(&program);
    let version = site_packages.as_deref().and_then(dist_info_version);
    let bundled_list = site_packages
        .map(|sp| sp.join("sherlock_project/resources/data.json"))
        .filter(|p| p.is_file());
    let interpreter = match origin {
        Origin::Configured => None,
        Origin::Path | Origin::Managed => python_shebang(&program),
    };
    SherlockInstall {
        program,
        origin,
        version,
        bundled_list,
        interpreter,
    }
}

/// The interpreter of a pip-generated console script: `#!/abs/path/python3.X`.
fn python_shebang(script: &Path) -> Option<PathBuf> {
    use std::io::Read;
    let mut head = [0u8; 512];
    let n = fs::File::open(script).ok()?.read(&mut head).ok()?;
    let first = std::str::from_utf8(&head[..n]).ok()?.lines().next()?;
    let interpreter = PathBuf::from(first.strip_prefix("#!")?.trim());
    let is_python = interpreter
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("python"));
    (is_python && interpreter.is_absolute() && is_executable(&interpreter)).then_some(interpreter)
}

/// `venv/bin/sherlock` → `venv/lib/python3.X/site-packages`, if that layout is there.
fn site_packages_of(program: &Path) -> Option<PathBuf> {
    let venv = program.parent()?.parent()?;
    let lib = fs::read_dir(venv.join("lib")).ok()?;
    lib.filter_map(Result::ok)
        .map(|e| e.path().join("site-packages"))
        .find(|sp| sp.join("sherlock_project").is_dir())
}

fn dist_info_version(site_packages: &Path) -> Option<String> {
    fs::read_dir(site_packages)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .find_map(|name| {
            name.strip_prefix("sherlock_project-")?
                .strip_suffix(".dist-info")
                .map(str::to_string)
        })
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    // Absolute even for a relative PATH entry: Sherlock runs in a temp dir of its own.
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
        .and_then(|found| std::path::absolute(found).ok())
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Asks Sherlock itself (`--version`), for installs outside a recognisable venv.
pub async fn query_version(program: &Path) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut child = child_env::command(program, Child::Sherlock)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .process_group(0)
        .spawn()
        .ok()?;
    // Whatever it started goes with it when this returns, however it returns.
    let _group = child.id().map(super::ProcessGroup);
    let stdout = child.stdout.take()?;
    let read = async {
        let mut buf = Vec::new();
        let mut limited = stdout.take(64 * 1024);
        tokio::select! {
            _ = limited.read_to_end(&mut buf) => {}
            // A child it left behind may hold stdout open: its own exit is the end.
            _ = async {
                let _ = child.wait().await;
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            } => {}
        }
        buf
    };
    let out = tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&out);
    text.split_whitespace()
        .find_map(|w| w.strip_prefix('v'))
        .filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(str::to_string)
}

/// Creates (or finishes) the managed venv with the pinned Sherlock and returns it.
/// `say` receives one line per step; pip's own output goes to stderr.
/// Concurrent setups (two processes, or parallel tests) wait for each other on a lock file.
pub async fn setup(
    config: &SherlockConfig,
    say: impl Fn(&str),
) -> Result<SherlockInstall, InstallError> {
    let dir = managed_venv_dir(config).ok_or(InstallError::NoDataDir)?;
    let parent = dir.parent().unwrap_or(&dir).to_path_buf();
    fs::create_dir_all(&parent).map_err(io_err(format!("creating {}", parent.display())))?;

    let lock_path = dir.with_extension("lock");
    let lock_file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err(format!("opening {}", lock_path.display())))?;
    let lock_file = tokio::task::spawn_blocking(move || lock_file.lock().map(|_| lock_file))
        .await
        .map_err(|e| InstallError::Io {
            context: "waiting for the setup lock".into(),
            source: std::io::Error::other(e),
        })?
        .map_err(io_err(format!("locking {}", lock_path.display())))?;

    let result = install_into(config, &dir, &say).await;
    drop(lock_file);
    result
}

async fn install_into(
    config: &SherlockConfig,
    dir: &Path,
    say: &impl Fn(&str),
) -> Result<SherlockInstall, InstallError> {
    if let Some(ready) = managed_install(config) {
        say(&format!(
            "Sherlock {} is already installed in {}",
            pinned_version(),
            dir.display()
        ));
        return Ok(ready);
    }
    if dir.exists() {
        say(&format!(
            "Removing an unfinished virtualenv at {}",
            dir.display()
        ));
        fs::remove_dir_all(dir).map_err(io_err(format!("removing {}", dir.display())))?;
    }

    let python = &config.python;
    if find_on_path(python).is_none() && !Path::new(python).is_file() {
        return Err(InstallError::NoPython {
            python: python.clone(),
        });
    }
    say(&format!(
        "Creating a Python virtualenv at {}",
        dir.display()
    ));
    run_step(
        "creating the virtualenv",
        child_env::command(python, Child::Installer)
            .arg("-m")
            .arg("venv")
            .arg(dir),
        "is the python3-venv package installed?",
    )
    .await?;

    let requirements = dir.join("requirements.txt");
    fs::write(&requirements, REQUIREMENTS)
        .map_err(io_err(format!("writing {}", requirements.display())))?;
    say(&format!(
        "Installing sherlock-project=={} and its dependencies from PyPI (about 200 MB)",
        pinned_version()
    ));
    run_step(
        "pip install",
        child_env::command(dir.join("bin").join("python"), Child::Installer)
            .args(["-m", "pip", "install", "--disable-pip-version-check"])
            .args(["--no-input", "--quiet", "--requirement"])
            .arg(&requirements),
        "check the network connection to PyPI; pip's messages are above",
    )
    .await?;

    let marker = dir.join(READY_MARKER);
    let mut f =
        fs::File::create(&marker).map_err(io_err(format!("writing {}", marker.display())))?;
    f.write_all(pinned_version().as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(io_err(format!("writing {}", marker.display())))?;
    let install = managed_install(config).ok_or_else(|| InstallError::StepFailed {
        step: "checking the new virtualenv",
        status: "bin/sherlock is missing".into(),
        hint: "the sherlock-project package did not install its command".into(),
    })?;
    say(&format!("Sherlock is ready: {}", install.program.display()));
    Ok(install)
}

async fn run_step(step: &'static str, cmd: &mut Command, hint: &str) -> Result<(), InstallError> {
    // Child output goes to our stderr, so `scan --json` keeps stdout clean.
    let to_stderr = || -> Stdio {
        std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null())
    };
    let status = cmd
        .stdin(Stdio::null())
        .stdout(to_stderr())
        .stderr(to_stderr())
        .kill_on_drop(true)
        .status()
        .await
        .map_err(io_err(format!("starting {step}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(InstallError::StepFailed {
            step,
            status: status.to_string(),
            hint: hint.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_is_read_from_the_requirements_file() {
        assert_eq!(pinned_version(), "0.16.2");
    }

    #[test]
    fn the_interpreter_comes_from_a_python_shebang_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let python = dir.path().join("python3.11");
        fs::write(&python, "").expect("write");
        fs::set_permissions(&python, fs::Permissions::from_mode(0o755)).expect("chmod");
        let script = dir.path().join("sherlock");
        fs::write(&script, format!("#!{}\nimport sys\n", python.display())).expect("write");
        assert_eq!(python_shebang(&script), Some(python));
        fs::write(&script, "#!/bin/sh\nexec true\n").expect("write");
        assert_eq!(python_shebang(&script), None);
    }

    #[test]
    fn configured_bin_must_exist_and_be_executable() {
        let config = |bin: &Path| {
            let mut map = std::collections::HashMap::new();
            map.insert("SHERLOCK_BIN".to_string(), bin.display().to_string());
            crate::config::Config::from_map(&map)
                .expect("valid")
                .sherlock
        };
        let err = locate(&config(Path::new("/nonexistent/sherlock"))).expect_err("missing");
        assert!(err.to_string().contains("does not exist"), "{err}");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("sherlock");
        fs::write(&file, "#!/bin/sh\n").expect("write");
        let err = locate(&config(&file)).expect_err("not executable");
        assert!(err.to_string().contains("not an executable"), "{err}");
    }
}
