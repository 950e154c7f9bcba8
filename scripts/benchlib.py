"""Helpers shared by the benchmark scripts (scripts/bench, scripts/bench-reddit,
scripts/bench-toxicity): building, the fakes, the machine line, timing with peak RSS."""

import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Where cargo builds: CARGO_TARGET_DIR when set (relative to the repository, where the scripts
# run cargo), else target/.
TARGET = (ROOT / (os.environ.get("CARGO_TARGET_DIR") or "target")).resolve()
RELEASE = TARGET / "release"
BIN = RELEASE / "account-scanner"
FAKE_SITES = RELEASE / "examples" / "fake_sites"
FAKE_REDDIT = RELEASE / "examples" / "fake_reddit"
HOME = TARGET / "tmp" / "sherlock-home"
PATH = "/usr/local/bin:/usr/bin:/bin"


def build(*examples):
    cmd = ["cargo", "build", "--release", "--bin", "account-scanner"]
    for example in examples:
        cmd += ["--example", example]
    subprocess.run(cmd, cwd=ROOT, check=True)


def sherlock_path():
    """Installs the pinned Sherlock where the tests keep it (if needed); returns its path."""
    env = dict(os.environ, XDG_DATA_HOME=str(HOME))
    env.pop("SHERLOCK_BIN", None)
    out = subprocess.run([str(BIN), "setup"], env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def machine():
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({model or platform.machine()}), Linux {platform.release()}, "
            f"Python {platform.python_version()}")


def start_fake_sites(bulk, latency, workdir, name="bulk"):
    """fake_sites with `bulk` generated sites; returns (process, site list with only those)."""
    full = workdir / f"{name}-full.json"
    proc = subprocess.Popen(
        [str(FAKE_SITES), "--bulk", str(bulk), "--latency-ms", latency, "--out", str(full)],
        stdout=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline()
    if not line.startswith("listening"):
        proc.kill()
        sys.exit(f"fake_sites did not start: {line!r}")
    # Only the generated sites: the fixed ones include a hanging site and a dead port.
    sites = json.loads(full.read_text())
    listing = workdir / f"{name}.json"
    listing.write_text(json.dumps({k: v for k, v in sites.items() if k.startswith("Bulk")}))
    return proc, listing


def start_fake_reddit(comments, posts, latency_ms, moderation_latency_ms=None, stats_file=None):
    """fake_reddit (+ fake Perspective and OpenAI); returns (process, env pointing at them)."""
    cmd = [str(FAKE_REDDIT), "--comments", str(comments), "--posts", str(posts),
           "--latency-ms", str(latency_ms)]
    if moderation_latency_ms is not None:
        cmd += ["--moderation-latency-ms", str(moderation_latency_ms)]
    if stats_file is not None:
        cmd += ["--stats-file", str(stats_file)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    env = {}
    for line in proc.stdout:
        line = line.strip()
        if line == "ready":
            return proc, env
        key, _, value = line.partition("=")
        env[key] = value
    proc.kill()
    sys.exit("fake_reddit did not start")


def request_counts(stats_file):
    """The fake_reddit stats file: {"reddit": N, "perspective": N, "openai": N}."""
    time.sleep(0.4)  # the fake rewrites it every 100 ms
    try:
        pairs = Path(stats_file).read_text().split()
    except FileNotFoundError:
        return {"reddit": 0, "perspective": 0, "openai": 0}
    return {k: int(v) for k, v in (p.split("=") for p in pairs)}


def stop(*procs):
    for proc in procs:
        proc.kill()
        proc.wait()


def _tree_rss_kib(pid):
    """Current RSS of a process and all its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


def _sample(pid, stop_event, peaks):
    status = Path(f"/proc/{pid}/status")
    while not stop_event.is_set():
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks["own"] = max(peaks["own"], int(line.split()[1]))
        except (OSError, ValueError):
            break
        peaks["tree"] = max(peaks["tree"], _tree_rss_kib(pid))
        time.sleep(0.01)


def run_timed(cmd, env, cwd=None, capture=False):
    """Runs `cmd`; returns (seconds, own peak RSS KiB (VmHWM), peak RSS KiB of the process tree
    sampled every 10 ms, stdout if captured). Exits the script if the command fails."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd,
                            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    peaks = {"own": 0, "tree": 0}
    stop_event = threading.Event()
    sampler = threading.Thread(target=_sample, args=(proc.pid, stop_event, peaks))
    sampler.start()
    out, err = proc.communicate()
    elapsed = time.monotonic() - start
    stop_event.set()
    sampler.join()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited with {proc.returncode}: {err[-2000:]}")
    return elapsed, peaks["own"], peaks["tree"], out
