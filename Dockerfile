# FocusFlow: one Rust binary on an empty (scratch) base, running as uid/gid 10001.
#   docker build -t focusflow .        (or: docker compose up -d --build)
# The runtime image holds the binary (glibc linked in on x86_64; elsewhere also the four
# glibc/libgcc files it links), /etc/passwd and /etc/group, /etc/nsswitch.conf, /tmp, the
# prompts and /app/data: no shell, no package manager.

# ---- build ---------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /build

# 1. Dependencies, in their own layer: rebuilt only when Cargo.toml or Cargo.lock change.
# Cargo refuses a manifest that names a missing target, so every [[bench]], [[test]] and
# [[example]] the manifest declares gets a placeholder (benches/<name>.rs and so on, or its
# `path`); step 2 copies the real files over them. Auto-discovered targets need nothing.
COPY Cargo.toml Cargo.lock ./
# The linker (.cargo/config.toml: scripts/link-hot-first links glibc statically and places the
# functions the server runs first in the binary, which keeps its resident code small) and its
# list of those functions.
COPY .cargo .cargo
COPY scripts/link-hot-first scripts/code-order.txt scripts/
RUN awk -F'"' 'function out() { if (n != "") print (p != "" ? p : d "/" n ".rs"); n = p = "" } \
      /^[[:space:]]*\[/ { out(); d = "" } \
      /^[[:space:]]*\[\[bench\]\]/ { d = "benches" } \
      /^[[:space:]]*\[\[test\]\]/ { d = "tests" } \
      /^[[:space:]]*\[\[example\]\]/ { d = "examples" } \
      d != "" && /^[[:space:]]*name[[:space:]]*=/ { n = $2 } \
      d != "" && /^[[:space:]]*path[[:space:]]*=/ { p = $2 } \
      END { out() }' Cargo.toml > /tmp/targets \
 && mkdir -p src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && while read -r f; do mkdir -p "$(dirname "$f")" && echo 'fn main() {}' > "$f"; done < /tmp/targets \
 && cargo build --release --locked \
 && rm -rf src \
 && xargs -r rm -f < /tmp/targets \
 && rm /tmp/targets

# 2. The application: src/, migrations/ and prompts/ (read at compile time by include_str!),
# templates/ (askama), benches/ (named by the manifest), static/ when it exists. .dockerignore is a
# whitelist, so `COPY . .` copies exactly those and tolerates a folder that is absent. touch: the
# copied sources may be older than the placeholder build's outputs.
COPY . .
RUN touch src/main.rs && { [ ! -f src/lib.rs ] || touch src/lib.rs; } \
 && rm -f target/release/code-order.log \
 && cargo build --release --locked \
 && { cat target/release/code-order.log 2>/dev/null || echo "code order: not applied (see scripts/link-hot-first)"; }

# 3. The runtime file system, assembled here because the runtime stage has no shell: the binary,
# every shared library it links (ldd: none on x86_64, where scripts/link-hot-first links glibc
# statically; elsewhere libc, libm, libgcc_s and the loader, at the paths the binary asks for),
# the users, and a world-writable /tmp (SQLite's fallback for temp files). glibc >= 2.34 has the
# `files` and `dns` NSS modules built in, also when linked statically: no libnss_*.so is needed.
# The last line runs the binary inside that tree, so a missing library fails the build here.
RUN mkdir -p /rootfs/app /rootfs/etc /rootfs/tmp /emptydir \
 && chmod 1777 /rootfs/tmp \
 && install -s -m 0755 target/release/focusflow /rootfs/app/focusflow \
 && libs=$(ldd target/release/focusflow | grep -o '/[^ ]*' || true) \
 && if ldd target/release/focusflow | grep 'not found'; then exit 1; fi \
 && for lib in $libs; do cp --parents -L "$lib" /rootfs; done \
 && printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
      'focusflow:x:10001:10001:FocusFlow:/app:/sbin/nologin' > /rootfs/etc/passwd \
 && printf '%s\n' 'root:x:0:' 'focusflow:x:10001:' > /rootfs/etc/group \
 && printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' > /rootfs/etc/nsswitch.conf \
 && chroot /rootfs /app/focusflow --version

# ---- run -----------------------------------------------------------------------------------
FROM scratch

# TLS uses rustls with bundled webpki roots: no CA certificates or OpenSSL needed.
COPY --from=builder /rootfs /
# /app/data is where the compose file mounts the named volume; a new named volume inherits the
# 10001 ownership. --chown applies to the directory COPY creates here.
COPY --from=builder --chown=10001:10001 /emptydir /app/data
COPY prompts /app/prompts
WORKDIR /app

# HOST, not HOSTNAME (Docker sets HOSTNAME to the container id).
ENV HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/app/data

EXPOSE 3000

# The binary probes http://127.0.0.1:$PORT/api/health and exits 0 or 1 (the image has no curl).
HEALTHCHECK --interval=5s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/app/focusflow", "healthcheck"]

# Numeric, so the runtime needs no passwd lookup and Kubernetes' runAsNonRoot can verify it;
# /etc/passwd names it `focusflow` for ps and friends.
USER 10001:10001

# Exec form: the app is PID 1 and receives SIGTERM itself (it shuts down gracefully).
CMD ["/app/focusflow"]
