#!/usr/bin/env python3
"""Measures the release binary: time from process start to the first healthy /api/health, and
idle RSS after start-up. Usage: scripts/startup-and-rss.py [path/to/focusflow] [runs]
Everything stays on loopback; each run uses a fresh temporary data directory."""
import http.client, os, socket, statistics, subprocess, sys, tempfile, time

binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/focusflow")
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

times, rss = [], []
for _ in range(runs):
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {"PATH": os.environ.get("PATH", ""), "HOST": "127.0.0.1", "PORT": str(port),
               "DATA_DIR": data, "RUST_LOG": "warn"}
        start = time.perf_counter()
        proc = subprocess.Popen([binary], env=env, cwd=data,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", "/api/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.0005)
        times.append((time.perf_counter() - start) * 1000)
        time.sleep(2)
        rss.append(rss_kib(proc.pid))
        proc.terminate()
        proc.wait(timeout=10)

print(f"start to healthy: median {statistics.median(times):.1f} ms, "
      f"min {min(times):.1f} ms, max {max(times):.1f} ms over {runs} runs")
print(f"idle RSS after 2 s: median {statistics.median(rss) / 1024:.1f} MiB "
      f"(min {min(rss) / 1024:.1f}, max {max(rss) / 1024:.1f})")
