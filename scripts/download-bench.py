#!/usr/bin/env python3
"""1 GiB download benchmark: FocusFlow's download stage against `curl -o /dev/null` of the same
URL, both from a loopback server, with the FocusFlow server's RSS growth during the download.

Usage (from the repository root): python3 scripts/download-bench.py [path/to/focusflow] [runs]

Without a path it uses $CARGO_TARGET_DIR/release/focusflow (or target/release/focusflow),
building it when missing. Everything stays on 127.0.0.1:
  - a file of DOWNLOAD_BENCH_BYTES (default 1 GiB = the default MAX_DOWNLOAD_BYTES) that starts
    with an MP3 frame header, served as audio/mpeg with its Content-Length by a small server in
    a second process (sendfile, so the source is not the bottleneck);
  - curl downloads it `runs` times (default 3) to /dev/null, and, for reference, `runs` times to
    a file beside DATA_DIR followed by `sync` of that file (the work the download stage does);
  - FocusFlow (TRANSCRIBER=none, no LLM key, so the job ends after the download;
    ALLOW_PRIVATE_CIDRS=127.0.0.0/8 so the guard lets it reach the loopback server) downloads it
    as a job `runs` times. Its time is read from the job's own log ("Downloading audio" to
    "Downloaded …": the stage, including writing the file to DATA_DIR/files and fsync), and its
    RSS is sampled every 20 ms; growth = peak RSS during the job (VmHWM, reset before the job)
    minus RSS just before it.

To S3: with STORAGE_URL set (and AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_REGION, e.g. from `eval "$(bash .ci/s3.sh start)"` with
STORAGE_URL=$FOCUSFLOW_TEST_STORAGE_URL), FocusFlow streams the download into a multipart upload
to the bucket instead of DATA_DIR, and the stored size is checked through the audio route.
"""
import http.client, http.server, json, os, socket, statistics, subprocess, sys, tempfile, time
from datetime import datetime

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = int(os.environ.get("DOWNLOAD_BENCH_BYTES", str(1 << 30)))


def serve(port, path):
    """The loopback audio host (run as a separate process by main)."""
    size = os.path.getsize(path)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with open(path, "rb") as f:
                try:
                    self.connection.sendfile(f)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def binary_path():
    if len(sys.argv) > 1 and not sys.argv[1].isdigit():
        return os.path.abspath(sys.argv[1])
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    path = os.path.join(target, "release", "focusflow")
    if not os.path.exists(path):
        subprocess.run(["cargo", "build", "--release"], cwd=REPO, check=True)
    return path


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


def request(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def wait_until_listening(port):
    for _ in range(1000):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.01)
    sys.exit(f"nothing listens on {port}")


def log_time(line):
    # "[2025-01-01T10:00:00.123Z] message"
    stamp = line[1:line.index("]")]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), sys.argv[3])
        return
    runs = int(sys.argv[-1]) if len(sys.argv) > 1 and sys.argv[-1].isdigit() else 3
    binary = binary_path()
    work = tempfile.mkdtemp(prefix="focusflow-download-")
    audio = os.path.join(work, "meeting.mp3")
    with open(audio, "wb") as f:
        f.write(bytes([0xFF, 0xFB, 0x90, 0x64]) + b"\0" * 413)  # an MPEG-1 Layer III frame
        f.truncate(SIZE)  # the rest sparse: served from memory, not the disk
    host_port = free_port()
    host = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve",
                             str(host_port), audio])
    data = os.path.join(work, "data")
    os.mkdir(data)
    server = None
    try:
        wait_until_listening(host_port)
        url = f"http://127.0.0.1:{host_port}/meeting.mp3"
        with open("/proc/loadavg") as f:
            print(f"load average before: {f.read().split()[:3]}; {SIZE} bytes; {runs} runs",
                  flush=True)

        curl = []
        for _ in range(runs):
            out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}", url],
                                 capture_output=True, text=True, check=True).stdout
            curl.append(float(out))
            print(f"  curl: {curl[-1]:.2f} s, {SIZE / curl[-1] / 1e6:.0f} MB/s", flush=True)

        # For reference: curl storing the file on the same disk as DATA_DIR, then syncing it,
        # which is the work FocusFlow's stage does (curl -o /dev/null stores nothing).
        curl_disk = []
        for _ in range(runs):
            target = os.path.join(work, "curl.mp3")
            started = time.time()
            subprocess.run(["curl", "-s", "-o", target, url], check=True)
            subprocess.run(["sync", target], check=True)
            curl_disk.append(time.time() - started)
            os.remove(target)
            print(f"  curl -o file + sync: {curl_disk[-1]:.2f} s", flush=True)

        port = free_port()
        env = {"PATH": os.environ.get("PATH", ""), "HOST": "127.0.0.1", "PORT": str(port),
               "DATA_DIR": data, "RUST_LOG": "warn", "RATE_LIMIT_MAX_REQUESTS": "0",
               "TRANSCRIBER": "none", "ALLOW_PRIVATE_CIDRS": "127.0.0.0/8",
               "MAX_DOWNLOAD_BYTES": str(max(SIZE, 1 << 30))}
        s3 = bool(os.environ.get("STORAGE_URL"))
        for name in ("STORAGE_URL", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID",
                     "AWS_SECRET_ACCESS_KEY"):
            if os.environ.get(name):
                env[name] = os.environ[name]
        if s3:
            print(f"  FocusFlow stores in {os.environ['STORAGE_URL']} at "
                  f"{os.environ.get('AWS_ENDPOINT_URL', 'AWS')}", flush=True)
        server = subprocess.Popen([binary], env=env, cwd=data,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until_listening(port)
        focusflow, growth = [], []
        for _ in range(runs):
            before = status_kib(server.pid, "VmRSS")
            with open(f"/proc/{server.pid}/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current RSS
            started = time.time()
            status, body = request(port, "POST", "/api/jobs", {"url": url})
            assert status == 201, (status, body)
            job_id = json.loads(body)["id"]
            peak = before
            while True:
                peak = max(peak, status_kib(server.pid, "VmRSS"))
                status, body = request(port, "GET", f"/api/jobs/{job_id}")
                job = json.loads(body)
                if job["status"] in ("completed", "error"):
                    break
                time.sleep(0.02)
            end_to_end = time.time() - started
            peak = max(peak, status_kib(server.pid, "VmHWM"))
            assert job["status"] == "completed", job
            logs = job["logs"]
            start = next(log_time(l) for l in logs if "Downloading audio" in l)
            end = next(log_time(l) for l in logs if "] Downloaded " in l)
            focusflow.append(end - start)
            growth.append((peak - before) / 1024)
            if s3:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", f"/jobs/{job_id}/audio", headers={"Range": "bytes=0-0"})
                answer = conn.getresponse()
                answer.read()
                stored = int(answer.getheader("Content-Range").rsplit("/", 1)[1])
            else:
                stored = os.path.getsize(os.path.join(data, job["file_path"]))
            assert stored == SIZE, (stored, SIZE)
            print(f"  focusflow: download stage {focusflow[-1]:.2f} s "
                  f"({SIZE / focusflow[-1] / 1e6:.0f} MB/s), job end to end {end_to_end:.2f} s, "
                  f"RSS {before / 1024:.1f} MiB before, peak {peak / 1024:.1f} MiB "
                  f"(+{growth[-1]:.1f} MiB)", flush=True)
            request(port, "DELETE", f"/api/jobs/{job_id}")
    finally:
        if server:
            server.terminate()
            server.wait(timeout=30)
        host.terminate()
        host.wait(timeout=10)
        subprocess.run(["rm", "-rf", work])

    curl_s, focus_s = statistics.median(curl), statistics.median(focusflow)
    with open("/proc/loadavg") as f:
        print(f"load average after: {f.read().split()[:3]}")
    print()
    print("| | median time | throughput |")
    print("|---|---:|---:|")
    print(f"| curl -o /dev/null | {curl_s:.2f} s | {SIZE / curl_s / 1e6:.0f} MB/s |")
    disk_s = statistics.median(curl_disk)
    print(f"| curl -o file, then sync | {disk_s:.2f} s | {SIZE / disk_s / 1e6:.0f} MB/s |")
    stage = "FocusFlow download stage" + (" (to S3)" if os.environ.get("STORAGE_URL") else "")
    print(f"| {stage} | {focus_s:.2f} s | {SIZE / focus_s / 1e6:.0f} MB/s |")
    print(f"\nFocusFlow at {curl_s / focus_s * 100:.0f}% of curl's speed; RSS growth during the "
          f"download: max {max(growth):.1f} MiB (median {statistics.median(growth):.1f} MiB); "
          f"{disk_s / focus_s * 100:.0f}% of the speed of curl storing the file and syncing it")


if __name__ == "__main__":
    main()
