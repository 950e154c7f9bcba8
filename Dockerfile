# syntax=docker/dockerfile:1
# account-scanner: the Discord bot, with the pinned Sherlock in a virtualenv.

# --- Build stage: the release binary. Cargo's registry and target dir are BuildKit cache
# mounts, so dependencies are compiled once and reused by later builds.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin account-scanner \
    && cp target/release/account-scanner /usr/local/bin/account-scanner

# --- Runtime stage: Python for Sherlock, no compilers, no pip cache.
FROM python:3.11-slim-bookworm AS runtime
# tini is PID 1: it forwards SIGINT/SIGTERM to the bot and reaps any orphaned process.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*
# The same pinned requirements and install script the tests use (one source of truth).
COPY sherlock/requirements.txt scripts/install-sherlock /tmp/sherlock/
RUN sh /tmp/sherlock/install-sherlock /opt/sherlock /tmp/sherlock/requirements.txt \
    && rm -rf /tmp/sherlock /root/.cache
COPY --from=build /usr/local/bin/account-scanner /usr/local/bin/account-scanner
RUN useradd --system --uid 10001 --create-home --home-dir /app scanner \
    && mkdir -p /app/scans && chown scanner:scanner /app/scans
USER scanner
WORKDIR /app
# `sherlock` on PATH is found before any managed venv; it runs through the launcher.
ENV PATH="/opt/sherlock/bin:${PATH}" \
    SCANS_DIR=/app/scans \
    HEALTH_PORT=8080
VOLUME ["/app/scans"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["account-scanner", "bot"]
