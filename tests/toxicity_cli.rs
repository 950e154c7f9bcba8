//! The toxicity backends through the real binary: which backend `auto` picks for each set of keys,
//! configuration errors (exit 3, naming the variable), a Reddit scan scored by the local default
//! and by OpenAI (against the fakes), and `eval-toxicity`.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::fake_openai::{self, FakeOpenAi, FakeOpenAiConfig};
use support::fake_perspective::{self, FakePerspective, FakePerspectiveConfig};
use support::fake_reddit::{FakeAccount, FakeReddit, FakeRedditConfig};

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn binary(dir: &Path, env: &[(&str, String)]) -> Command {
    let mut cmd = support::scanner(dir);
    cmd.env("SCANS_DIR", dir.join("scans"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

#[test]
fn check_shows_the_backend_auto_picks_for_each_set_of_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = ("PERSPECTIVE_API_KEY", "pk-test".to_string());
    let o = ("OPENAI_API_KEY", "sk-test".to_string());
    for (keys, expected) in [
        (
            vec![],
            "toxicity: local (all-MiniLM-L6-v2 fine-tuned + head ",
        ),
        (
            vec![p.clone()],
            "toxicity: perspective (Perspective API v1alpha1",
        ),
        (
            vec![o.clone()],
            "toxicity: openai (OpenAI moderation omni-moderation-latest; https://api.openai.com, batches of 32, 60 requests/min; threshold 0.7)",
        ),
        (vec![p.clone(), o.clone()], "toxicity: perspective ("),
    ] {
        for backend in [None, Some("auto")] {
            let mut env = keys.clone();
            if let Some(b) = backend {
                env.push(("TOXICITY_BACKEND", b.to_string()));
            }
            let out = binary(dir.path(), &env)
                .arg("check")
                .output()
                .expect("run check");
            let all = text(&out);
            assert!(all.contains(expected), "{env:?}:\n{all}");
            assert!(
                !all.contains("pk-test") && !all.contains("sk-test"),
                "{all}"
            );
        }
    }
    // An explicit choice wins over auto.
    let out = binary(
        dir.path(),
        &[p, o, ("TOXICITY_BACKEND", "local".to_string())],
    )
    .arg("check")
    .output()
    .expect("run check");
    let all = text(&out);
    assert!(
        all.contains("toxicity: local (all-MiniLM-L6-v2 fine-tuned"),
        "{all}"
    );
    assert!(!all.contains("for a hosted model"), "keys are set: {all}");
}

#[test]
fn a_bad_or_keyless_backend_is_a_configuration_error_naming_the_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (env, expected) in [
        (
            vec![("TOXICITY_BACKEND", "openai".to_string())],
            "OPENAI_API_KEY: is not set, but TOXICITY_BACKEND=openai needs it",
        ),
        (
            vec![("TOXICITY_BACKEND", "perspective".to_string())],
            "PERSPECTIVE_API_KEY: is not set, but TOXICITY_BACKEND=perspective needs it",
        ),
        (
            vec![("TOXICITY_BACKEND", "chatgpt".to_string())],
            "TOXICITY_BACKEND: `chatgpt` is not a backend: use auto, perspective, openai or local",
        ),
        (
            vec![("OPENAI_BATCH_SIZE", "1000".to_string())],
            "OPENAI_BATCH_SIZE: `1000` is not allowed: use a whole number from 1 to 256",
        ),
    ] {
        for args in [&["check"][..], &["scan", "alice", "--mode", "sherlock"][..]] {
            let out = binary(dir.path(), &env).args(args).output().expect("run");
            assert_eq!(
                out.status.code(),
                Some(3),
                "{env:?} {args:?}\n{}",
                text(&out)
            );
            assert!(text(&out).contains(expected), "{args:?}: {}", text(&out));
        }
    }
}

struct Fixture {
    reddit: FakeReddit,
    dir: tempfile::TempDir,
}

fn comments(i: usize) -> String {
    match i {
        0 => "you are a complete idiot".to_string(),
        1 => "I will kill you".to_string(),
        2 => "[removed]".to_string(),
        i => format!("a perfectly nice comment about gardening, number {i}"),
    }
}

impl Fixture {
    fn new(n: usize) -> Fixture {
        Fixture {
            reddit: FakeReddit::start(FakeRedditConfig {
                accounts: vec![FakeAccount::new("alice").with_comments(n, comments)],
                ..FakeRedditConfig::default()
            }),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn scan(&self, extra: &[(&str, String)]) -> Output {
        let mut env: Vec<(&str, String)> = self.reddit.env();
        env.push(("REDDIT_RATE_PER_MIN", "60000".into()));
        env.extend(extra.iter().cloned());
        binary(self.dir.path(), &env)
            .args(["scan", "alice", "--mode", "reddit"])
            .output()
            .expect("run scan")
    }

    fn report(&self) -> Value {
        let scans = self.dir.path().join("scans");
        let name = support::files_in(&scans)
            .into_iter()
            .find(|f| f.ends_with(".json"))
            .expect("a JSON report");
        serde_json::from_str(&std::fs::read_to_string(scans.join(name)).expect("read"))
            .expect("json")
    }
}

#[test]
fn with_no_key_a_reddit_scan_is_scored_by_the_local_heuristic() {
    let fx = Fixture::new(6);
    let out = fx.scan(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    for line in [
        "6 comments, 0 posts · 5 scored, 1 unscored",
        "scorer: local (all-MiniLM-L6-v2 fine-tuned + head ",
        " + word lists, heuristic)",
        "(an automated signal: it points a human at items to read; it does not decide)",
        "2 at or above 0.65",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
    }
    let r = &fx.report()["reddit"];
    assert_eq!(r["scoring"]["backend"], "local");
    assert_eq!(r["scoring"]["heuristic"], true);
    assert_eq!(r["scoring"]["configured"], true);
    assert_eq!(r["scoring"]["threshold"], 0.65);
    assert!(
        r["scoring"]["note"]
            .as_str()
            .is_some_and(|n| n.starts_with("An automated signal for a human to read")),
        "{}",
        r["scoring"]
    );
    let first = &r["comments"][0]["toxicity"];
    assert!(
        first["toxicity"].as_f64().is_some_and(|t| t >= 0.65),
        "{first}"
    );
    // Each part is in raw_categories: the model's heads and the word lists' signals.
    assert!(
        first["raw_categories"]["model_toxicity"].is_number(),
        "{first}"
    );
    assert!(
        first["raw_categories"]["model_insult"].is_number(),
        "{first}"
    );
    assert!(
        first["raw_categories"]["wordlist_alt_profanity_check"].is_number(),
        "{first}"
    );
    let second = &r["comments"][1]["toxicity"];
    assert!(
        second["toxicity"].as_f64().is_some_and(|t| t >= 0.65),
        "{second}"
    );
    assert!(
        second["categories"]["threat"]
            .as_f64()
            .is_some_and(|t| t >= 0.5),
        "{second}"
    );
    for i in 3..6 {
        let t = &r["comments"][i]["toxicity"]["toxicity"];
        assert!(t.as_f64().is_some_and(|t| t < 0.65), "comment {i}: {t}");
    }
    assert_eq!(r["comments"][2]["toxicity"]["unscored_reason"], "removed");
    fx.reddit.assert_no_unexpected();
}

#[test]
fn an_openai_scan_end_to_end_batches_and_never_shows_the_key() {
    let fx = Fixture::new(40);
    let openai = FakeOpenAi::start(FakeOpenAiConfig::default());
    // A Perspective key is set too: TOXICITY_BACKEND=openai wins over auto's preference.
    let perspective = FakePerspective::start(FakePerspectiveConfig::default());
    let mut env: Vec<(&str, String)> = openai.env();
    env.extend(perspective.env());
    env.push(("TOXICITY_BACKEND", "openai".into()));
    env.push(("OPENAI_RATE_PER_MIN", "60000".into()));
    env.push(("RUST_LOG", "trace".into()));
    openai.rate_limit_next(Some(0));
    let out = fx.scan(&env);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("scorer: openai (OpenAI moderation omni-moderation-latest)"),
        "{stdout}"
    );
    assert!(stdout.contains("39 scored, 1 unscored"), "{stdout}");
    assert!(
        perspective.requests().is_empty(),
        "Perspective was not used"
    );
    let sizes: Vec<usize> = openai.batches().iter().map(Vec::len).collect();
    assert_eq!(
        sizes.iter().sum::<usize>(),
        39 + sizes[0],
        "one 429, then every text once"
    );
    assert_eq!(openai.requests().len(), 3, "429, then 32 + 7");

    let r = &fx.report()["reddit"];
    assert_eq!(r["scoring"]["backend"], "openai");
    assert_eq!(r["scoring"]["heuristic"], false);
    let first = &r["comments"][0]["toxicity"];
    assert_eq!(first["toxicity"], 0.91);
    assert_eq!(first["categories"]["insult"], 0.91);
    assert_eq!(first["raw_categories"]["harassment"], 0.91);
    assert_eq!(
        r["comments"][1]["toxicity"]["categories"]["threat"], 0.83,
        "harassment/threatening"
    );

    let mut everything = text(&out);
    let scans = fx.dir.path().join("scans");
    for f in support::files_in(&scans) {
        everything.push_str(&std::fs::read_to_string(scans.join(f)).unwrap_or_default());
    }
    assert!(everything.contains("TRACE"), "trace logs were captured");
    assert!(
        !everything.contains(fake_openai::API_KEY),
        "the OpenAI key leaked"
    );
    assert!(!everything.contains(fake_perspective::API_KEY));
    openai.assert_no_unexpected();
}

#[test]
fn eval_toxicity_prints_precision_recall_and_f1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = binary(dir.path(), &[])
        .arg("eval-toxicity")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    for line in [
        "local backend (all-MiniLM-L6-v2 fine-tuned + head ",
        "threshold 0.65",
        "precision recall     F1    FPR    AUC",
        "fresh2",
        "harmful  threat",
        "harmless friendly_profanity",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
    }

    // Another file, and the threshold from TOXICITY_THRESHOLD.
    let file = dir.path().join("mine.csv");
    std::fs::write(
        &file,
        "text,label,category\nyou are a complete idiot,1,insult\nlovely weather today,0,everyday\n",
    )
    .expect("write");
    let out = binary(dir.path(), &[("TOXICITY_THRESHOLD", "0.5".into())])
        .arg("eval-toxicity")
        .arg(&file)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout.contains("threshold 0.50"), "{stdout}");
    assert!(
        stdout.contains("all            2    1    0    1    0      1.000  1.000  1.000"),
        "{stdout}"
    );

    let out = binary(dir.path(), &[])
        .args(["eval-toxicity", "/nonexistent.csv"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// A copy of the model files built into the binary, for `TOXICITY_MODEL_DIR`.
fn model_copy(dir: &Path) -> std::path::PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/toxicity");
    let dst = dir.join("model");
    std::fs::create_dir_all(&dst).expect("create model dir");
    for f in [
        "model.safetensors",
        "tokenizer.json",
        "head.json",
        "combination.json",
    ] {
        std::fs::copy(src.join(f), dst.join(f)).expect("copy model file");
    }
    dst
}

#[test]
fn a_model_dir_with_the_same_files_scores_like_the_built_in_model() {
    let fx = Fixture::new(6);
    let built_in = {
        let out = fx.scan(&[]);
        assert!(out.status.success(), "{}", text(&out));
        fx.report()["reddit"].clone()
    };
    std::fs::remove_dir_all(fx.dir.path().join("scans")).expect("clear scans");
    let dir = model_copy(fx.dir.path());
    let out = fx.scan(&[("TOXICITY_MODEL_DIR", dir.display().to_string())]);
    assert!(out.status.success(), "{}", text(&out));
    let from_dir = fx.report()["reddit"].clone();
    let model = from_dir["scoring"]["model"].as_str().expect("model");
    assert!(
        model.starts_with("all-MiniLM-L6-v2 fine-tuned + head "),
        "{model}"
    );
    assert_eq!(from_dir["scoring"], built_in["scoring"]);
    assert_eq!(from_dir["comments"], built_in["comments"]);
}

/// Missing, truncated or altered model files: the scan still succeeds (same exit code), scored by
/// the word lists at their own threshold, and the report, the summary and `check` say why.
#[test]
fn a_missing_or_corrupt_model_falls_back_to_the_word_lists_and_says_so() {
    type Break = fn(&Path);
    let faults: [(&str, Break, &str); 5] = [
        (
            "missing weights",
            |d| std::fs::remove_file(d.join("model.safetensors")).expect("rm"),
            "model.safetensors is missing",
        ),
        (
            "truncated weights",
            |d| {
                let p = d.join("model.safetensors");
                let bytes = std::fs::read(&p).expect("read");
                std::fs::write(&p, &bytes[..bytes.len() / 2]).expect("truncate");
            },
            "(corrupt, truncated or a different file)",
        ),
        (
            "one byte changed",
            |d| {
                let p = d.join("model.safetensors");
                let mut bytes = std::fs::read(&p).expect("read");
                let i = bytes.len() - 1000;
                bytes[i] ^= 0x01;
                std::fs::write(&p, bytes).expect("write");
            },
            "has sha256",
        ),
        (
            "missing heads",
            |d| std::fs::remove_file(d.join("head.json")).expect("rm"),
            "head.json is missing",
        ),
        (
            "no such directory",
            |d| std::fs::remove_dir_all(d).expect("rm"),
            "is missing",
        ),
    ];
    for (what, break_it, reason) in faults {
        let fx = Fixture::new(6);
        let dir = model_copy(fx.dir.path());
        break_it(&dir);
        let env = [("TOXICITY_MODEL_DIR", dir.display().to_string())];
        let out = fx.scan(&env);
        assert!(out.status.success(), "{what}: {}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("scorer: local (word lists only (")
                && stdout.contains("fallback, the model could not be loaded")
                && stdout.contains(reason),
            "{what}: {stdout}"
        );
        assert!(stdout.contains("at or above 0.70"), "{what}: {stdout}");
        let r = &fx.report()["reddit"];
        let model = r["scoring"]["model"].as_str().expect("model");
        assert!(
            model.contains("fallback") && model.contains(reason),
            "{what}: {model}"
        );
        assert_eq!(r["scoring"]["threshold"], 0.7, "{what}");
        let first = &r["comments"][0]["toxicity"];
        assert!(
            first["toxicity"].as_f64().is_some_and(|t| t >= 0.7),
            "{what}: {first}"
        );
        assert!(
            first["raw_categories"]["alt_profanity_check"].is_number(),
            "{what}: {first}"
        );
        assert!(first["raw_categories"].get("model_toxicity").is_none());

        let out = binary(fx.dir.path(), &env)
            .arg("check")
            .output()
            .expect("run check");
        assert_eq!(out.status.code(), Some(3), "{what}: {}", text(&out));
        let all = text(&out);
        assert!(
            all.contains("toxicity: PROBLEM: local (word lists only (") && all.contains(reason),
            "{what}: {all}"
        );
    }
}
