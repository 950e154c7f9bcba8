"""account-scanner's Sherlock launcher: runs sherlock-project's own `main()` with two patches.

    python launcher.py [sherlock arguments...]

1. Worker pool: Sherlock checks sites 20 at a time (hard-coded); this raises the pool to
   SHERLOCK_WORKERS (default 64) by replacing the session class `sherlock()` builds its pool from.
2. Update check: every Sherlock start asks GitHub for its latest release (10 s timeout, one
   request per scan to a third party); this answers that one request locally with the installed
   version, so nothing is printed and nothing leaves the machine for it.
3. Start-up: Sherlock imports pandas (about 0.4 s of CPU) only to write --xlsx files, which
   account-scanner never asks for; pandas is imported lazily, on first use, instead.

Both patches rely on names inside sherlock_project.sherlock. If any is missing (another
version), the launcher prints one warning line and runs Sherlock unchanged, so an upgrade can
never break scans. account-scanner writes this file next to each run from the copy embedded in
its binary; the Docker image and the managed virtualenv therefore use the same launcher.
"""

import importlib
import inspect
import json
import os
import sys
import types

WARNING = "[!] account-scanner launcher: "


def missing_patch_points(sh):
    missing = []
    for name in ("SherlockFuturesSession", "sherlock", "main", "requests", "forge_api_latest_release"):
        if not hasattr(sh, name):
            missing.append(name)
    if missing:
        return missing
    try:
        if "max_workers" not in inspect.signature(sh.SherlockFuturesSession.__init__).parameters or \
                "SherlockFuturesSession(" not in inspect.getsource(sh.sherlock):
            missing.append("the worker pool in sherlock()")
        if "forge_api_latest_release" not in inspect.getsource(sh.main):
            missing.append("the update check in main()")
    except (OSError, TypeError, ValueError) as error:
        missing.append(f"source of sherlock_project.sherlock ({error})")
    return missing


def workers():
    try:
        n = int(os.environ.get("SHERLOCK_WORKERS", "64"))
    except ValueError:
        n = 64
    return max(1, n)


def patch(sh, pool_size):
    # Patch __init__ in place: replacing the class would break the `super(SherlockFuturesSession,
    # self)` calls inside it (they look the name up in the module at call time).
    original_init = sh.SherlockFuturesSession.__init__

    def init_with_wider_pool(self, *args, **kwargs):
        kwargs["max_workers"] = pool_size
        original_init(self, *args, **kwargs)

    sh.SherlockFuturesSession.__init__ = init_with_wider_pool

    real_requests = sh.requests
    update_url = sh.forge_api_latest_release
    version = getattr(sh, "__version__", "")

    class LocalRelease:
        text = json.dumps({"tag_name": "v" + version, "html_url": ""})
        status_code = 200

    class RequestsWithoutUpdateCheck:
        def __getattr__(self, name):
            return getattr(real_requests, name)

        def get(self, url, *args, **kwargs):
            if url == update_url:
                return LocalRelease()
            return real_requests.get(url, *args, **kwargs)

    sh.requests = RequestsWithoutUpdateCheck()


class LazyModule(types.ModuleType):
    """Stands in for a module until an attribute is used, then imports the real one."""

    def __getattr__(self, attr):
        del sys.modules[self.__name__]
        real = importlib.import_module(self.__name__)
        sys.modules[self.__name__] = real
        return getattr(real, attr)


def main():
    if "pandas" not in sys.modules:
        sys.modules["pandas"] = LazyModule("pandas")
    import sherlock_project.sherlock as sh

    missing = missing_patch_points(sh)
    if missing:
        version = getattr(sh, "__version__", "unknown")
        print(
            f"{WARNING}patch points not found in sherlock-project {version} ({', '.join(missing)}); "
            "running Sherlock unpatched",
            flush=True,
        )
    else:
        patch(sh, workers())
    sys.argv = ["sherlock"] + sys.argv[1:]
    return sh.main()


if __name__ == "__main__":
    sys.exit(main())
