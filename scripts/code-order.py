#!/usr/bin/env python3
"""Writes scripts/code-order.txt: the functions that the server runs as it starts, serves and
stops, which scripts/link-hot-first places first in the binary (docs/benchmarks.md, "Seventh
pass").

Usage (from the repository root; needs valgrind):
    cargo build --profile profiling
    python3 scripts/code-order.py target/profiling/focusflow

Runs the binary under callgrind (`--demangle=no`: the names as the linker sees them) twice: on
an empty data folder (a first start, which creates the database), and on one of 60 finished
jobs (scripts/load-bench.py's) with times shown in Europe/Berlin. Each time it makes the
requests a browser and an API client make (pages with and without a session, the job list, a
job's page and JSON, health, static assets with each compression, a 404), stops the server with
SIGTERM and lists every function of the binary that ran, by its name without the parts that
change from build to build (see `stem`). Any optimised build will do: the profiling build has
the symbols, and its names match the release build's once the crates' hashes are left out.
Run it again after a toolchain or dependency upgrade, or when the log line of
scripts/link-hot-first reports few of the listed functions found.
"""
import importlib.util, json, os, re, shutil, signal, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "scripts", "code-order.txt")

spec = importlib.util.spec_from_file_location(
    "load_bench", os.path.join(ROOT, "scripts", "load-bench.py"))
lb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lb)


def stem(symbol):
    """A symbol's name without what changes from build to build (as scripts/link-hot-first
    matches it): ThinLTO's `.llvm.<hash>` suffix and the crates' hashes (`Cs<hash>_` in a v0
    name; .cargo/config.toml asks for v0 names)."""
    symbol = re.sub(r"\.llvm\.\d+$", "", symbol)
    return re.sub(r"Cs[0-9A-Za-z]+_", "Cs_", symbol)


def exercise(port):
    time.sleep(3)  # what an idle server runs (the queue's and the sessions' timers)
    browser = {"Accept": "text/html", "Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"}
    cookie = lb.get(port, "/", browser)[1].get("set-cookie", "").split(";")[0]
    jobs = json.loads(lb.get(port, "/api/jobs?limit=1")[2])["jobs"]
    for _ in range(3):
        for job in jobs:
            lb.get(port, f"/jobs/{job['id']}", {**browser, "Cookie": cookie})
            lb.get(port, f"/api/jobs/{job['id']}", {"Accept": "application/json"})
        lb.get(port, "/", {**browser, "Cookie": cookie})
        lb.get(port, "/", {**browser, "Cookie": cookie, "Accept-Encoding": "gzip, deflate, br, zstd"})
        lb.get(port, "/api/health")
        lb.get(port, "/api/jobs?limit=50", {"Accept": "application/json"})
        lb.get(port, "/api/jobs", {"Accept": "application/json", "Accept-Encoding": "gzip"})
        lb.get(port, "/no-such-page", browser)
        lb.get(port, "/api/jobs/no-such-job", {"Accept": "application/json"})
        for encoding in ("br", "gzip", "zstd", "identity"):
            lb.get(port, "/static/htmx.min.js", {"Accept-Encoding": encoding})


def record(binary, data, zone):
    """The names of the functions the binary runs on `data` while it is exercised."""
    out = os.path.join(data, "callgrind.out")
    # The default rate limit (load-bench.py turns it off), so that its code is listed too.
    env = {"DISPLAY_TIMEZONE": zone, "RATE_LIMIT_MAX_REQUESTS": "60"}
    server = lb.Server(binary, data, env, start_timeout=120, wrapper=[
        "valgrind", "--tool=callgrind", "--demangle=no", "--dump-instr=no",
        f"--callgrind-out-file={out}"])
    try:
        exercise(server.port)
    finally:
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=120)
    ran = set()
    with open(out) as f:
        for line in f:
            m = re.match(r"c?fn=\(\d+\) (.+)$", line.rstrip("\n"))
            if m:
                ran.add(m.group(1))
    os.remove(out)
    return ran


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    # A first start: an empty data folder, the database created by the migrations.
    fresh = tempfile.mkdtemp(prefix="focusflow-order-")
    # A start on a folder in use: 60 finished jobs (load-bench.py's), times shown in a zone
    # with summer time.
    seeded = lb.seed(binary, 60)
    try:
        ran = record(binary, fresh, "UTC") | record(binary, seeded, "Europe/Berlin")
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.rmtree(seeded, ignore_errors=True)
    symbols = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True,
                             check=True).stdout
    listed = set()
    for line in symbols.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW" and parts[2] in ran:
            listed.add(stem(parts[2]))
    with open(OUT, "w") as f:
        f.write("# The functions the server runs as it starts, serves and stops, placed first in\n"
                "# the binary by scripts/link-hot-first. Made by scripts/code-order.py; do not edit.\n")
        f.writelines(name + "\n" for name in sorted(listed))
    print(f"{len(listed)} functions of {binary} written to {OUT}")


if __name__ == "__main__":
    main()
