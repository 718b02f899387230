#!/usr/bin/env python3
"""Writes scripts/code-order.txt: the functions that the server runs as it starts, serves and
stops, which scripts/link-hot-first places first in the binary (docs/benchmarks.md, "Seventh
pass").

Usage (from the repository root; needs valgrind, and perf for the native pass):
    cargo build --release
    python3 scripts/code-order.py target/release/focusflow [--fresh]

Runs the binary under callgrind (`--demangle=no`: the names as the linker sees them) twice: on
an empty data folder (a first start, which creates the database), and on one of 60 finished
jobs (scripts/load-bench.py's) with times shown in Europe/Berlin. Each time it makes the
requests a browser and an API client make (pages with and without a session, the job list, a
job's page and JSON, health, static assets with each compression, a 404), stops the server with
SIGTERM and lists every function of the binary that ran, by its name without the parts that
change from build to build (see `stem`). Run it on the release build, which keeps its symbols
for this (Cargo.toml): LTO inlines a little differently in other builds (the profiling build
with its line tables, say), and a function that one build inlines and another calls is missing
from the list that the other's run makes.

Then it runs the binary natively the same two ways under perf's page-fault event and adds the
functions whose code faulted in: code that callgrind does not see, because valgrind's virtual
CPU has other features than the real one (glibc's string functions, ring and zstd choose their
code by CPU features). A fault maps a window of pages (64 KiB), so a function that shares its
window with one found this way shows up only once that one has moved: after a change to the
list, build again and run this again, until the count it prints stops growing.

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
    """A symbol's name without what changes from build to build (scripts/link-hot-first's awk
    stem() does the same): ThinLTO's `.llvm.<hash>` suffix, the crates' hashes (`Cs<hash>_` in
    a v0 name; .cargo/config.toml asks for v0 names), and, at the end of a generic instance's
    name, the crate that instantiated it (`Cs_<length><crate>`, or `B<base-62>_`, a back
    reference to a crate named before): several crates may each instantiate the same generic
    function, and which of their copies LTO keeps differs from build to build."""
    symbol = re.sub(r"\.llvm\.\d+$", "", symbol)
    symbol = re.sub(r"Cs[0-9A-Za-z]+_", "Cs_", symbol)
    if not symbol.startswith("_R"):
        return symbol
    backref = re.search(r"B[0-9A-Za-z]{0,4}_$", symbol)
    if backref and backref.start() > 2:
        return symbol[:backref.start()]
    crate = symbol.rfind("Cs_")
    if crate > 2:
        m = re.fullmatch(r"(\d+)(.*)", symbol[crate + 3:])
        if m and len(m.group(2)) == int(m.group(1)):
            return symbol[:crate]
    return symbol


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


def record_native(binary, data, zone):
    """The names of the binary's functions whose code faults in while it runs natively on
    `data` and is exercised (perf's page-fault event: a fault on an instruction fetch has the
    faulting address as its instruction pointer)."""
    out = os.path.join(data, "perf.data")
    env = {"DISPLAY_TIMEZONE": zone, "RATE_LIMIT_MAX_REQUESTS": "60"}
    server = lb.Server(binary, data, env, wrapper=[
        "perf", "record", "-q", "-e", "page-faults", "-c", "1", "-d", "-o", out, "--"])
    try:
        exercise(server.port)
    finally:
        # SIGTERM to the server itself (perf's child), so that it stops as it does in service.
        with open(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children") as f:
            for child in f.read().split():
                os.kill(int(child), signal.SIGTERM)
        server.proc.wait(timeout=60)
    faults = subprocess.run(["perf", "script", "-i", out, "--no-demangle", "-F", "ip,addr,sym,dso"],
                            capture_output=True, text=True, check=True).stdout
    ran = set()
    for line in faults.splitlines():
        # The faulting address and the instruction's, each with its symbol and file: a fault
        # on an instruction of a function in the binary has the two the same.
        parts = line.split()
        if len(parts) == 6 and parts[0] == parts[3] and parts[5] == f"({binary})":
            ran.add(parts[4])
    os.remove(out)
    return ran


def main():
    if len(sys.argv) not in (2, 3) or sys.argv[2:] not in ([], ["--fresh"]):
        sys.exit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    # A first start: an empty data folder, the database created by the migrations.
    fresh = tempfile.mkdtemp(prefix="focusflow-order-")
    # A start on a folder in use: 60 finished jobs (load-bench.py's), times shown in a zone
    # with summer time.
    seeded = lb.seed(binary, 60)
    try:
        ran = record(binary, fresh, "UTC") | record(binary, seeded, "Europe/Berlin")
        if shutil.which("perf"):
            # Three times each: which of the runtime's task functions run varies with timing.
            native = set()
            for _ in range(3):
                shutil.rmtree(fresh, ignore_errors=True)
                fresh = tempfile.mkdtemp(prefix="focusflow-order-")
                native |= record_native(binary, fresh, "UTC")
                native |= record_native(binary, seeded, "Europe/Berlin")
            print(f"{len(native - ran)} functions that only the native runs faulted in")
            ran |= native
        else:
            print("perf is not installed: the list has only what callgrind saw")
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.rmtree(seeded, ignore_errors=True)
    symbols = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True,
                             check=True).stdout
    # What runs differs a little from run to run (which of the runtime's task functions, which
    # clean-ups), so the list keeps what earlier runs saw, as long as the binary still has it;
    # `--fresh` starts from nothing.
    kept = set()
    if "--fresh" not in sys.argv[2:] and os.path.exists(OUT):
        with open(OUT) as f:
            kept = {line.strip() for line in f if line.strip() and not line.startswith("#")}
    listed, seen = set(), set()
    for line in symbols.splitlines():
        parts = line.split()
        # Functions ("i": the resolvers of glibc's ifuncs, which a static binary runs at start).
        if len(parts) == 3 and parts[1] in "tTwWi":
            name = stem(parts[2])
            if parts[2] in ran:
                seen.add(name)
            if parts[2] in ran or name in kept:
                listed.add(name)
    with open(OUT, "w") as f:
        f.write("# The functions the server runs as it starts, serves and stops, placed first in\n"
                "# the binary by scripts/link-hot-first. Made by scripts/code-order.py; do not edit.\n")
        f.writelines(name + "\n" for name in sorted(listed))
    print(f"{len(seen)} functions ran, {len(listed - seen)} more kept from the list before")
    print(f"{len(listed)} functions of {binary} written to {OUT}")


if __name__ == "__main__":
    main()
