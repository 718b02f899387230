#!/usr/bin/env python3
"""Load benchmark: the job list page and GET /api/jobs under concurrent load from wrk.

Usage (from the repository root):
    python3 scripts/load-bench.py [path/to/focusflow]

Without a path it uses $CARGO_TARGET_DIR/release/focusflow (or target/release/focusflow),
building it with `cargo build --release` when missing. wrk comes from Debian's package
(`apt-get install wrk`); the script installs it when missing and it runs as root.

What it does, all on loopback:
  1. seeds a fresh data directory with 10,000 finished jobs (and another with 1,000): the real
     schema, made by starting the binary once, then rows written straight into SQLite (the FTS
     triggers fire as they would). Each job has a title, a ~1.6 KB summary and 6 log lines.
  2. starts the server on 127.0.0.1 with the rate limit off (RATE_LIMIT_MAX_REQUESTS=0), no
     Basic auth, no providers, its working directory the data directory (no .env is read).
  3. runs wrk (a second process) against each URL and prints requests/s, p50 and p99 latency,
     errors, the server's CPU time per request (user + system from /proc/<pid>/stat: far less
     sensitive to other load on the machine than requests/s), and its peak RSS (VmHWM from
     /proc/<pid>/status) after the runs.

Knobs (environment): LOAD_DURATION (seconds per URL, default 15), LOAD_CONNECTIONS (64),
LOAD_THREADS (1: wrk needs little CPU and the machine has 2 cores), LOAD_JOBS (10000),
LOAD_ALL_JOBS (1000), LOAD_TIMEOUT (30: seconds wrk waits for one answer; its own default of
2 s would drop the 10,000-job all-jobs answers), LOAD_WRITES (0: writes per second to the store
while wrk runs, each a
PATCH of a job's title, which makes every kept listing stale: LOAD_WRITES=10 is about what a
few running jobs write; a very high rate measures listings built afresh for each request).

LOAD_ONLY picks sections (comma-separated; default all): pages (10,000 jobs: list page and
API pages), all (the all-jobs listing at 1,000 and at 10,000 jobs), encodings, overhead, memory
(idle RSS, and the peak through the 10,000-job scenario: a legacy jobs.json imported at
start, then 100 POSTs, then the all-jobs listing under load).

It also reports, for issue #16:
  - the all-jobs listing and the list page with each Accept-Encoding (none, gzip, br, zstd):
    bytes per answer and req/s;
  - request overhead: /api/health and a job (GET /api/jobs/{id}) against a bare axum handler
    that answers the same health JSON (examples/bare_health.rs, built here with
    `cargo build --release --example bare_health` when missing), in the same run.
"""
import json, os, random, re, shutil, sqlite3, subprocess, sys, tempfile, time, uuid
import http.client, socket

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DURATION = int(os.environ.get("LOAD_DURATION", "15"))
CONNECTIONS = int(os.environ.get("LOAD_CONNECTIONS", "64"))
THREADS = int(os.environ.get("LOAD_THREADS", "1"))
JOBS = int(os.environ.get("LOAD_JOBS", "10000"))
ALL_JOBS = int(os.environ.get("LOAD_ALL_JOBS", "1000"))
WRITES = float(os.environ.get("LOAD_WRITES", "0"))
TIMEOUT = int(os.environ.get("LOAD_TIMEOUT", "30"))
ONLY = set(filter(None, os.environ.get(
    "LOAD_ONLY", "pages,all,encodings,overhead,memory").split(",")))

SUMMARY = """# Weekly planning

## Overview
The team reviewed the release plan, the support backlog and the hiring pipeline. The release
stays on track for the end of the month; two risks were raised about the migration.

## Decisions
- Ship the new importer behind a flag in the next release.
- Move the support rotation to a weekly schedule.

## Action items
| Owner | Task | Due |
|---|---|---|
| Ana | Draft the migration runbook | 2025-10-03 |
| Ben | Review the importer's error messages | 2025-10-01 |
| Chloe | Schedule interviews for the backend role | 2025-10-06 |

## Risks
- The migration may take longer than the maintenance window on large installations.
- Two customers depend on the old export format.

## Open questions
- Do we keep the old export for one more release?

## Next steps
Ana shares the runbook on Friday; the team meets again next Tuesday.
"""


def binary_path():
    if len(sys.argv) > 1:
        return os.path.abspath(sys.argv[1])
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    path = os.path.join(target, "release", "focusflow")
    if not os.path.exists(path):
        subprocess.run(["cargo", "build", "--release"], cwd=REPO, check=True)
    return path


def bare_binary(binary):
    """The bare axum yardstick beside `binary` (target/release/examples/bare_health)."""
    path = os.path.join(os.path.dirname(binary), "examples", "bare_health")
    if not os.path.exists(path):
        # Built with the binary's own profile (target/<profile>/), so both are optimised alike.
        profile = os.path.basename(os.path.dirname(binary))
        flags = ["--release"] if profile == "release" else ["--profile", profile]
        subprocess.run(["cargo", "build", *flags, "--example", "bare_health"], cwd=REPO,
                       check=True)
    return path


def ensure_wrk():
    if shutil.which("wrk"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True,
                       stdout=subprocess.DEVNULL)
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """User + system CPU time the process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def get(port, path, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


class Server:
    def __init__(self, binary, data_dir, extra_env=None, wrapper=(), start_timeout=60):
        """`wrapper`: a command the binary runs under (valgrind), which starts it slower."""
        self.port = free_port()
        env = {"PATH": os.environ.get("PATH", ""), "HOST": "127.0.0.1", "PORT": str(self.port),
               "DATA_DIR": data_dir, "RUST_LOG": "warn", "RATE_LIMIT_MAX_REQUESTS": "0",
               "TRANSCRIBER": "none"}
        # Allocator and runtime knobs pass through (LD_PRELOAD: another allocator), to measure
        # them without a rebuild.
        env.update({k: v for k, v in os.environ.items()
                    if k.startswith(("MALLOC_", "GLIBC_TUNABLES", "TOKIO_", "LD_PRELOAD"))})
        env.update(extra_env or {})
        self.proc = subprocess.Popen([*wrapper, binary], env=env, cwd=data_dir,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + start_timeout
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"the server exited with {self.proc.returncode}")
            try:
                if get(self.port, "/api/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                sys.exit("the server did not become healthy")
            time.sleep(0.01)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def seed(binary, jobs):
    """A data directory with `jobs` finished jobs in the real schema."""
    data = tempfile.mkdtemp(prefix=f"focusflow-load-{jobs}-")
    Server(binary, data).stop()  # creates and migrates the database
    db = sqlite3.connect(os.path.join(data, "focusflow.db"))
    rng = random.Random(8)
    now = int(time.time() * 1000)
    base = now - 400 * 86_400_000
    rows, logs = [], []
    for n in range(jobs):
        job_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        created = base + n * 3_000_000
        meeting = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(created / 1000))
        rows.append((job_id, f"https://example.com/recordings/{n}.mp3", meeting, created,
                     f"Weekly planning {n}: release, support rotation, hiring", SUMMARY,
                     created, created + 120_000))
        for k, message in enumerate(["Job created", "Downloading audio",
                                     "Downloaded 24.1 MB (audio/mpeg)",
                                     "Transcribed 41 utterances", "Summary written",
                                     "Job completed"]):
            logs.append((job_id, created + k * 20_000, message))
    with db:
        db.executemany(
            "INSERT INTO jobs (id, url, meeting_date, sort_ms, status, title, summary, "
            "created_at, updated_at, checkpoint, attempts) "
            "VALUES (?1, ?2, ?3, ?4, 'completed', ?5, ?6, ?7, ?8, 'summarize', 1)", rows)
        db.executemany("INSERT INTO job_logs (job_id, ts, message) VALUES (?, ?, ?)", logs)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return data


def wrk(url, headers=()):
    # wrk gives up on an answer after 2 s by default and counts it as a timeout, not a request:
    # the all-jobs answer of 10,000 jobs (15 MB) under 64 connections takes longer than that.
    command = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency",
               f"--timeout={TIMEOUT}s"]
    for header in headers:
        command += ["-H", header]
    output = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout

    def ms(text):
        value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    result = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": ms(re.search(r"\s50%\s+(\S+)", output).group(1)),
        "p99": ms(re.search(r"\s99%\s+(\S+)", output).group(1)),
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "non2xx": int((re.search(r"Non-2xx or 3xx responses: (\d+)", output) or [0, 0])[1]),
        "socket_errors": re.search(r"Socket errors: (.*)", output),
    }
    result["socket_errors"] = result["socket_errors"].group(1) if result["socket_errors"] else "none"
    return result


def writer(port, stop):
    """PATCHes the newest jobs' titles LOAD_WRITES times a second (from as many threads as it
    takes: a write waits for its answer) until `stop` is set; returns how many writes it made
    (so their cost can be told apart). The newest jobs are those a running job would be: on the
    first page."""
    import math
    import threading
    job_ids = [job["id"] for job in json.loads(get(port, "/api/jobs?limit=5")[2])["jobs"]]
    count = [0]
    lock = threading.Lock()
    threads = max(1, math.ceil(WRITES / 10))

    def loop(index):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        interval = threads / WRITES
        next_at = time.time() + index * interval / threads
        n = 0
        while not stop.is_set():
            job_id = job_ids[(index + n * threads) % len(job_ids)]
            n += 1
            body = json.dumps({"title": f"Weekly planning, edit {n}"})
            connection.request("PATCH", f"/api/jobs/{job_id}", body,
                               {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            assert response.status == 200, response.status
            with lock:
                count[0] += 1
            next_at += interval
            stop.wait(max(0.0, next_at - time.time()))

    workers = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()

    class Joined:
        def join(self):
            for worker in workers:
                worker.join()

    return Joined(), count


def run(binary, data, targets):
    import threading
    server = Server(binary, data)
    results = []
    try:
        for name, path, headers, check in targets:
            status, _, body = get(server.port, path, dict(h.split(": ", 1) for h in headers))
            assert status == 200, (path, status)
            check(body)
            cpu_before = cpu_seconds(server.proc.pid)
            stop = threading.Event()
            writes = writer(server.port, stop) if WRITES > 0 else None
            result = wrk(f"http://127.0.0.1:{server.port}{path}", headers)
            stop.set()
            if writes:
                writes[0].join()
                name += f", {writes[1][0] / DURATION:.0f} writes/s"
            result["cpu_us"] = (cpu_seconds(server.proc.pid) - cpu_before) / result["requests"] * 1e6
            result["rss_mib"] = status_kib(server.proc.pid, "VmRSS") / 1024
            result["name"] = name
            results.append(result)
            print(f"  {name}: {result['rps']:.0f} req/s, p50 {result['p50']:.2f} ms, "
                  f"p99 {result['p99']:.2f} ms, {result['requests']} requests, "
                  f"server CPU {result['cpu_us']:.0f} µs/request, "
                  f"non-2xx {result['non2xx']}, socket errors {result['socket_errors']}, "
                  f"RSS now {result['rss_mib']:.1f} MiB", flush=True)
        peak = status_kib(server.proc.pid, "VmHWM") / 1024
    finally:
        server.stop()
    return results, peak


def main():
    ensure_wrk()
    binary = binary_path()
    with open("/proc/loadavg") as f:
        print(f"load average before: {f.read().split()[:3]}; wrk -t{THREADS} -c{CONNECTIONS} "
              f"-d{DURATION}s; {WRITES:g} writes/s; binary {binary}; sections {sorted(ONLY)}",
              flush=True)
    data = seed(binary, JOBS) if ONLY & {"pages", "all"} else None
    all_data = seed(binary, ALL_JOBS) if ONLY & {"all", "encodings", "overhead"} else None
    ten_k, all_jobs, encodings, overheads, memories = [], [], [], [], None
    peak = all_peak = big_peak = 0.0

    def jobs_count(expected):
        def check(body):
            count = len(json.loads(body)["jobs"])
            assert count == expected, (count, expected)
        return check

    def html(body):
        assert b"<html" in body.lower()

    try:
        if "pages" in ONLY:
            # The first page, then a cursor 100 pages in (keyset pagination: same cost).
            probe = Server(binary, data)
            cursor = None
            path = "/api/jobs?limit=50"
            for _ in range(100):
                body = json.loads(get(probe.port, path)[2])
                cursor = body["next_cursor"]
                path = f"/api/jobs?limit=50&cursor={cursor}"
            # A returning browser: its session cookie (form token) already set.
            _, headers, _ = get(probe.port, "/")
            cookie = headers.get("set-cookie", headers.get("Set-Cookie", "")).split(";")[0]
            probe.stop()
            print(f"{JOBS} jobs:", flush=True)
            ten_k, peak = run(binary, data, [
                ("GET / (HTML list, session cookie)", "/", [f"Cookie: {cookie}"], html),
                ("GET / (HTML list, new visitor each time)", "/", [], html),
                ("GET /api/jobs?limit=50", "/api/jobs?limit=50", [], jobs_count(50)),
                ("GET /api/jobs?limit=50&cursor=(page 101)",
                 f"/api/jobs?limit=50&cursor={cursor}", [], jobs_count(50)),
            ])
            print(f"  peak RSS (VmHWM) over the {JOBS}-job runs: {peak:.1f} MiB", flush=True)
        if "all" in ONLY:
            print(f"{ALL_JOBS} jobs:", flush=True)
            all_jobs, all_peak = run(binary, all_data, [
                ("GET /api/jobs (all jobs)", "/api/jobs", [], jobs_count(ALL_JOBS)),
            ])
            print(f"  peak RSS (VmHWM) over the {ALL_JOBS}-job run: {all_peak:.1f} MiB",
                  flush=True)
            print(f"{JOBS} jobs:", flush=True)
            big, big_peak = run(binary, data, [
                ("GET /api/jobs (all jobs)", "/api/jobs", [], jobs_count(JOBS)),
            ])
            print(f"  peak RSS (VmHWM) over the {JOBS}-job all-jobs run: {big_peak:.1f} MiB",
                  flush=True)
            all_jobs = [(r, ALL_JOBS) for r in all_jobs] + [(r, JOBS) for r in big]
        if "encodings" in ONLY:
            encodings = compression(binary, all_data)
        if "overhead" in ONLY:
            overheads = overhead(binary, all_data)
        if "memory" in ONLY:
            memories = memory(binary)
    finally:
        for folder in (data, all_data):
            if folder:
                shutil.rmtree(folder, ignore_errors=True)

    with open("/proc/loadavg") as f:
        print(f"load average after: {f.read().split()[:3]}")
    print()
    if ten_k or all_jobs:
        print("| request | jobs | req/s | p50 | p99 | server CPU per request | errors |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for result, jobs in [(r, JOBS) for r in ten_k] + all_jobs:
            print(f"| {result['name']} | {jobs} | {result['rps']:.0f} | {result['p50']:.2f} ms | "
                  f"{result['p99']:.2f} ms | {result['cpu_us']:.0f} µs | {result['non2xx']} |")
        print(f"\npeak server RSS: {max(peak, big_peak):.1f} MiB ({JOBS} jobs), {all_peak:.1f} MiB "
              f"({ALL_JOBS} jobs)")
        print()
    if encodings:
        print(f"| request ({ALL_JOBS} jobs) | Accept-Encoding | bytes | req/s | p99 |")
        print("|---|---|---:|---:|---:|")
        for name, encoding, size, result in encodings:
            print(f"| {name} | {encoding or '(none)'} | {size:,} | {result['rps']:.0f} | "
                  f"{result['p99']:.2f} ms |")
        print()
    if overheads:
        print("| request | req/s | share of the bare handler's | server CPU per request |")
        print("|---|---:|---:|---:|")
        bare = overheads[0][1]["rps"]
        for name, result in overheads:
            print(f"| {name} | {result['rps']:.0f} | {100 * result['rps'] / bare:.0f}% | "
                  f"{result['cpu_us']:.1f} µs |")
        print()
    if memories:
        print("| memory | MiB |")
        print("|---|---:|")
        for name, mib in memories:
            print(f"| {name} | {mib:.1f} |")


def smaps_summary(pid):
    """Resident KiB by kind of mapping: heap and anonymous, thread stacks, the binary, others."""
    kinds = {}
    current = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                name = parts[5] if len(parts) > 5 else "[anon]"
                if name.startswith("/") and "focusflow" in name:
                    # By permission: r-x is code; the first r-- holds the relocations and
                    # constant data; the r-- after the code is the relocated data (relro).
                    name = f"[binary {parts[1]}{' relro' if current and 'r-x' in current else ''}]"
                elif name.startswith("/"):
                    name = "[libraries]"
                current = name
            elif parts and parts[0] == "Rss:":
                kinds[current] = kinds.get(current, 0) + int(parts[1])
    return kinds


def legacy_jobs_json(path, jobs):
    """A legacy jobs.json of `jobs` finished jobs like the seeded ones."""
    rng = random.Random(9)
    base = int(time.time() * 1000) - 400 * 86_400_000
    with open(path, "w") as f:
        f.write("[")
        for n in range(jobs):
            created = base + n * 3_000_000
            stamp = lambda ms: time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ms / 1000))
            item = {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "url": f"https://example.com/recordings/{n}.mp3", "status": "completed",
                "title": f"Weekly planning {n}: release, support rotation, hiring",
                "summary": SUMMARY, "meeting_date": stamp(created),
                "created_at": created, "updated_at": created + 120_000,
                "logs": [f"[{stamp(created + k * 20_000)}] {m}" for k, m in enumerate(
                    ["Job created", "Downloading audio", "Downloaded 24.1 MB (audio/mpeg)",
                     "Transcribed 41 utterances", "Summary written", "Job completed"])],
            }
            f.write(("," if n else "") + json.dumps(item))
        f.write("]")


def memory(binary):
    """Idle RSS (a fresh data directory, a few seconds after start), and the peak RSS through
    the 10,000-job scenario: jobs.json imported at start, 100 POSTs, the list under load."""
    rows = []
    data = tempfile.mkdtemp(prefix="focusflow-idle-")
    try:
        server = Server(binary, data)
        time.sleep(3)
        idle = status_kib(server.proc.pid, "VmRSS") / 1024
        kinds = smaps_summary(server.proc.pid)
        threads = len(os.listdir(f"/proc/{server.proc.pid}/task"))
        server.stop()
        print(f"  idle RSS: {idle:.1f} MiB, {threads} threads; resident KiB by mapping: "
              + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])
                          if v >= 64), flush=True)
        rows.append(("idle RSS (fresh data directory, 3 s after start)", idle))
    finally:
        shutil.rmtree(data, ignore_errors=True)
    data = tempfile.mkdtemp(prefix="focusflow-scenario-")
    try:
        legacy_jobs_json(os.path.join(data, "jobs.json"), JOBS)
        server = Server(binary, data)
        # The import runs at start; the list shows every job once it is done.
        deadline = time.time() + 300
        while len(json.loads(get(server.port, "/api/jobs?limit=1")[2])["jobs"]) == 0:
            assert time.time() < deadline, "the import did not finish"
            time.sleep(0.2)
        after_import = status_kib(server.proc.pid, "VmRSS") / 1024
        import_peak = status_kib(server.proc.pid, "VmHWM") / 1024
        for n in range(100):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            conn.request("POST", "/api/jobs", json.dumps(
                {"transcript": f"[Speaker A]: meeting {n}, the budget and the plan."}),
                {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            assert response.status == 201, response.status
        after_posts = status_kib(server.proc.pid, "VmRSS") / 1024
        result = wrk(f"http://127.0.0.1:{server.port}/api/jobs")
        peak = status_kib(server.proc.pid, "VmHWM") / 1024
        time.sleep(3)
        settled = status_kib(server.proc.pid, "VmRSS") / 1024
        server.stop()
        print(f"  {JOBS}-job scenario: RSS {after_import:.1f} MiB after the import "
              f"(peak so far {import_peak:.1f} MiB), "
              f"{after_posts:.1f} MiB after 100 POSTs; all-jobs listing {result['rps']:.1f} req/s, "
              f"p99 {result['p99']:.0f} ms; peak {peak:.1f} MiB, {settled:.1f} MiB 3 s later",
              flush=True)
        rows += [(f"RSS after importing {JOBS} jobs", after_import),
                 ("peak RSS (VmHWM) through the import", import_peak),
                 ("RSS after 100 POSTs", after_posts),
                 (f"peak RSS (VmHWM) through the {JOBS}-job scenario", peak)]
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return rows


def compression(binary, data):
    """Bytes and req/s of the all-jobs listing and the list page with each encoding."""
    server = Server(binary, data)
    rows = []
    try:
        for name, path in [("GET /api/jobs (all jobs)", "/api/jobs"), ("GET / (HTML list)", "/")]:
            for encoding in [None, "gzip", "br", "zstd"]:
                headers = [f"Accept-Encoding: {encoding}"] if encoding else []
                status, answer_headers, body = get(
                    server.port, path, dict(h.split(": ", 1) for h in headers))
                assert status == 200, (path, status)
                sent = {k.lower(): v for k, v in answer_headers.items()}.get("content-encoding")
                assert sent == encoding, (path, encoding, sent)
                result = wrk(f"http://127.0.0.1:{server.port}{path}", headers)
                rows.append((name, encoding, len(body), result))
                print(f"  {name}, {encoding or 'no encoding'}: {len(body):,} bytes, "
                      f"{result['rps']:.0f} req/s, p99 {result['p99']:.2f} ms", flush=True)
    finally:
        server.stop()
    return rows


def overhead(binary, data):
    """/api/health and a cached job against a bare axum handler, in the same run."""
    port = free_port()
    bare = subprocess.Popen([bare_binary(binary), str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    server = Server(binary, data)
    try:
        deadline = time.time() + 30
        while True:
            try:
                if get(port, "/api/health")[0] == 200:
                    break
            except OSError:
                pass
            assert time.time() < deadline, "the bare handler did not start"
            time.sleep(0.05)
        job_id = json.loads(get(server.port, "/api/jobs?limit=1")[2])["jobs"][0]["id"]
        rows = []
        for name, pid, url in [
            ("bare axum handler, same health JSON", bare.pid,
             f"http://127.0.0.1:{port}/api/health"),
            ("GET /api/health", server.proc.pid, f"http://127.0.0.1:{server.port}/api/health"),
            ("GET /api/jobs/{id}", server.proc.pid,
             f"http://127.0.0.1:{server.port}/api/jobs/{job_id}"),
        ]:
            cpu_before = cpu_seconds(pid)
            result = wrk(url)
            result["cpu_us"] = (cpu_seconds(pid) - cpu_before) / max(result["requests"], 1) * 1e6
            rows.append((name, result))
            print(f"  {name}: {result['rps']:.0f} req/s, p99 {result['p99']:.2f} ms, "
                  f"server CPU {result['cpu_us']:.1f} µs/request", flush=True)
    finally:
        server.stop()
        bare.terminate()
        bare.wait(timeout=10)
    return rows


if __name__ == "__main__":
    main()
