#!/usr/bin/env python3
"""Benchmark: GET /api/jobs?limit=50 and POST /api/jobs at 10,000 jobs, on SQLite and on
PostgreSQL, one server process on one machine, wrk on loopback.

Usage (from the repository root):
    python3 scripts/backend-bench.py [path/to/focusflow]

Without a path it uses $CARGO_TARGET_DIR/release/focusflow (see load-bench.py, whose helpers
this reuses). PostgreSQL: FOCUSFLOW_BENCH_DATABASE_URL names a server whose superuser may create
databases (a fresh one, dropped afterwards); unset, a throwaway server is started with
.ci/postgres.sh and stopped at the end. psql comes from the same PostgreSQL install.

What it does, for each backend:
  1. seeds 10,000 finished jobs (title, ~1.6 KB summary, 6 log lines each) straight into the
     real schema, made by starting the binary once (the search triggers fire as they would);
  2. starts the server (rate limit off, no providers, TRANSCRIBER=none) and runs wrk against
     GET /api/jobs?limit=50 for LOAD_DURATION seconds (default 15);
  3. runs wrk POSTing {"url": ...} to /api/jobs for LOAD_DURATION seconds: each request creates
     a queued job in one transaction with its first log line. The URL is a closed port on
     loopback (ALLOW_PRIVATE_URLS=true), so the server's two workers take jobs and fail them
     on a refused connection meanwhile, as a real queue's writes would go on beside the API.
Prints requests/s, p50 and p99 per run and the server's CPU seconds per request.
"""
import importlib.util, json, os, random, subprocess, sys, tempfile, time, uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("load_bench", os.path.join(REPO, "scripts", "load-bench.py"))
lb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lb)

JOBS = int(os.environ.get("LOAD_JOBS", "10000"))
POST_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"url": "http://127.0.0.1:9/recording.mp3"}'
"""


def psql_binary():
    found = sorted(p for p in os.listdir("/usr/lib/postgresql") if p.isdigit())
    if not found:
        sys.exit("PostgreSQL is not installed (apt-get install postgresql)")
    return f"/usr/lib/postgresql/{found[-1]}/bin/psql"


def psql(url, sql):
    subprocess.run([psql_binary(), "-q", "-v", "ON_ERROR_STOP=1", url], input=sql, text=True,
                   check=True, stdout=subprocess.DEVNULL)


def seed_postgres(binary, server_url):
    """A fresh database on `server_url` with JOBS finished jobs; returns its URL."""
    name = f"focusflow_bench_{os.getpid()}"
    psql(server_url, f"DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8';")
    url = server_url.rsplit("/", 1)[0] + "/" + name
    data = tempfile.mkdtemp(prefix="focusflow-bench-pg-")
    lb.Server(binary, data, {"DATABASE_URL": url}).stop()  # creates and migrates the schema
    rng = random.Random(8)
    now = int(time.time() * 1000)
    base = now - 400 * 86_400_000
    lines = []
    for n in range(JOBS):
        job_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        created = base + n * 3_000_000
        meeting = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(created / 1000))
        title = f"Weekly planning {n}: release, support rotation, hiring"
        lines.append("\t".join([job_id, f"https://example.com/recordings/{n}.mp3", meeting,
                                str(created), title,
                                lb.SUMMARY.replace("\\", "\\\\").replace("\n", "\\n"),
                                str(created), str(created + 120_000)]))
    copy_jobs = ("COPY jobs (id, url, meeting_date, sort_ms, title, summary, created_at, updated_at) FROM STDIN;\n"
                 + "\n".join(lines) + "\n\\.\n")
    psql(url, "ALTER TABLE jobs ALTER COLUMN status SET DEFAULT 'completed';\n" + copy_jobs
         + "UPDATE jobs SET checkpoint = 'summarize', attempts = 1;\n"
         + "ALTER TABLE jobs ALTER COLUMN status DROP DEFAULT;\n"
         + "INSERT INTO job_logs (job_id, ts, message) SELECT j.id, j.created_at + (m.k - 1) * 20000, m.message "
         + "FROM jobs j, unnest(ARRAY['Job created', 'Downloading audio', 'Downloaded 24.1 MB (audio/mpeg)', "
         + "'Transcribed 41 utterances', 'Summary written', 'Job completed']) WITH ORDINALITY AS m(message, k) "
         + "ORDER BY j.sort_ms, m.k;\nVACUUM ANALYZE;\n")
    return data, url, name


def wrk_post(url):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(POST_LUA)
        script = f.name
    command = ["wrk", f"-t{lb.THREADS}", f"-c{lb.CONNECTIONS}", f"-d{lb.DURATION}s", "--latency",
               "-s", script, url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    os.unlink(script)
    return output


def measure(binary, data, env, label):
    server = lb.Server(binary, data, env)
    try:
        metrics = lb.get(server.port, "/metrics")[2].decode()
        count = sum(int(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                    if line.startswith("focusflow_jobs{"))
        before = lb.cpu_seconds(server.proc.pid)
        result = lb.wrk(f"http://127.0.0.1:{server.port}/api/jobs?limit=50")
        cpu = lb.cpu_seconds(server.proc.pid) - before
        print(f"{label}: GET /api/jobs?limit=50 at {count} jobs: {result['rps']:.0f} req/s, "
              f"p50 {result['p50']:.2f} ms, p99 {result['p99']:.2f} ms, non-2xx {result['non2xx']}, "
              f"socket errors {result['socket_errors']}, server CPU {1e6 * cpu / max(result['requests'], 1):.0f} us/request",
              flush=True)
        before = lb.cpu_seconds(server.proc.pid)
        output = wrk_post(f"http://127.0.0.1:{server.port}/api/jobs")
        cpu = lb.cpu_seconds(server.proc.pid) - before
        import re
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
        requests = int(re.search(r"(\d+) requests in", output).group(1))
        p50 = re.search(r"\s50%\s+(\S+)", output).group(1)
        p99 = re.search(r"\s99%\s+(\S+)", output).group(1)
        non2xx = int((re.search(r"Non-2xx or 3xx responses: (\d+)", output) or [0, 0])[1])
        print(f"{label}: POST /api/jobs: {rps:.0f} req/s, p50 {p50}, p99 {p99}, non-2xx {non2xx}, "
              f"server CPU {1e6 * cpu / max(requests, 1):.0f} us/request", flush=True)
        if non2xx:
            sys.exit(f"{label}: {non2xx} POSTs were refused; the numbers above are not creations")
    finally:
        server.stop()


def main():
    lb.ensure_wrk()
    binary = lb.binary_path()
    with open("/proc/loadavg") as f:
        print(f"load average before: {f.read().split()[:3]}; wrk -t{lb.THREADS} -c{lb.CONNECTIONS} "
              f"-d{lb.DURATION}s; binary {binary}", flush=True)
    env = {"ALLOW_PRIVATE_URLS": "true"}
    data = lb.seed(binary, JOBS)
    measure(binary, data, env, "sqlite")

    server_url = os.environ.get("FOCUSFLOW_BENCH_DATABASE_URL")
    started = None
    if not server_url:
        out = subprocess.run(["bash", os.path.join(REPO, ".ci", "postgres.sh"), "start"],
                             capture_output=True, text=True, check=True).stdout
        exports = dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines())
        server_url, started = exports["FOCUSFLOW_TEST_DATABASE_URL"], exports["FOCUSFLOW_TEST_PG_DIR"]
    try:
        data, url, name = seed_postgres(binary, server_url)
        measure(binary, data, dict(env, DATABASE_URL=url), "postgresql")
        psql(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE);")
    finally:
        if started:
            subprocess.run(["bash", os.path.join(REPO, ".ci", "postgres.sh"), "stop", started])


if __name__ == "__main__":
    main()
