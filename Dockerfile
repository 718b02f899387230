# FocusFlow: one Rust binary on Debian slim, running as uid 10001.
#   docker build -t focusflow .        (or: docker compose up -d --build)

# ---- build ---------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
WORKDIR /build

# Only the binary is built, so [[bench]]/[[test]]/[[example]] tables are dropped from the
# manifest: their files are not in the build context (see .dockerignore) and cargo would refuse
# to load a manifest naming a missing target. Dependencies and the lockfile are untouched.

# 1. Dependencies, in their own layer: rebuilt only when Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
RUN awk '/^\[/ { skip = /^\[\[(bench|test|example)\]\]/ } !skip' Cargo.toml > Cargo.bin.toml \
 && mv Cargo.bin.toml Cargo.toml \
 && mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src

# 2. The application: src/, migrations/ and prompts/ (read at compile time by include_str!),
# templates/ and static/ when they exist. .dockerignore is a whitelist, so `COPY . .` copies
# exactly those and tolerates a folder that is absent. touch: the copied sources may be older
# than the dummy build's outputs.
COPY . .
RUN awk '/^\[/ { skip = /^\[\[(bench|test|example)\]\]/ } !skip' Cargo.toml > Cargo.bin.toml \
 && mv Cargo.bin.toml Cargo.toml \
 && touch src/main.rs && { [ ! -f src/lib.rs ] || touch src/lib.rs; } \
 && cargo build --release --locked \
 && install -m 0755 target/release/focusflow /usr/local/bin/focusflow

# ---- run -----------------------------------------------------------------------------------
FROM debian:bookworm-slim

# TLS uses rustls with bundled webpki roots: no ca-certificates or OpenSSL needed.
RUN groupadd --gid 10001 focusflow \
 && useradd --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin focusflow \
 && mkdir -p /app/data \
 && chown focusflow:focusflow /app/data

WORKDIR /app
COPY --from=builder /usr/local/bin/focusflow /app/focusflow
COPY prompts /app/prompts

# HOST, not HOSTNAME (Docker sets HOSTNAME to the container id). /app/data is where the
# compose file mounts the named volume; a new named volume inherits its 10001 ownership.
ENV HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/app/data

EXPOSE 3000

# The binary probes http://127.0.0.1:$PORT/api/health and exits 0 or 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/app/focusflow", "healthcheck"]

USER focusflow

# Exec form: the app is PID 1 and receives SIGTERM itself (it shuts down gracefully).
CMD ["/app/focusflow"]
