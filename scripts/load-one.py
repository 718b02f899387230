#!/usr/bin/env python3
"""One URL of scripts/load-bench.py under writes, to tell a write's own cost from a page's.

Usage (from the repository root):
    LOAD_WRITES=60 python3 scripts/load-one.py <binary> '/api/jobs?limit=50'
    LOAD_WRITES=60 python3 scripts/load-one.py <binary> '/api/jobs?limit=50&offset=5000'

Seeds 10,000 jobs as load-bench.py does (kept in /tmp/focusflow-load-one-seed between runs,
copied for each run), starts the server, PATCHes the five newest jobs' titles LOAD_WRITES times
a second while wrk (-t2 -c32 -dLOAD_DURATION, default 8 s) requests the URL, and prints
requests/s and the server's CPU per request. The second URL is a page the writes do not touch:
what it costs more under writes is paid per write whatever the page.

LOAD_COOKIE=1 sends the cookies of a first `GET /` with every request, as a browser that
polls the page does (its session is then read, not made, by each request); without it each
request comes from a new visitor.
"""
import importlib.util, os, shutil, sys, threading

os.environ.setdefault("LOAD_DURATION", "8")
os.environ.setdefault("LOAD_CONNECTIONS", "32")
os.environ.setdefault("LOAD_THREADS", "2")
spec = importlib.util.spec_from_file_location(
    "load_bench", os.path.join(os.path.dirname(os.path.abspath(__file__)), "load-bench.py"))
lb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lb)


def stolen_seconds():
    """CPU time the hypervisor gave to others (all CPUs; `steal` in /proc/stat): on a shared
    virtual machine, runs that lost much of it measured a slower machine."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK")


def browser_cookies(port):
    """The `Cookie` header a browser sends after its first `GET /`."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/", headers={"Accept": "text/html"})
    response = conn.getresponse()
    response.read()
    pairs = [line.split(";", 1)[0] for line in response.msg.get_all("Set-Cookie") or []]
    if not pairs:
        sys.exit("the first GET / set no cookie")
    return "; ".join(pairs)


def main():
    binary, path = os.path.abspath(sys.argv[1]), sys.argv[2]
    seeded = "/tmp/focusflow-load-one-seed"
    if not os.path.exists(seeded):
        os.rename(lb.seed(binary, lb.JOBS), seeded)
    data = seeded + "-run"
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(seeded, data)
    server = lb.Server(binary, data)
    try:
        headers = []
        if os.environ.get("LOAD_COOKIE") == "1":
            headers = [f"Cookie: {browser_cookies(server.port)}"]
        lb.get(server.port, path, dict(h.split(": ", 1) for h in headers))
        cpu_before = lb.cpu_seconds(server.proc.pid)
        steal_before = stolen_seconds()
        stop = threading.Event()
        writes = lb.writer(server.port, stop) if lb.WRITES > 0 else None
        result = lb.wrk(f"http://127.0.0.1:{server.port}{path}", headers)
        stop.set()
        count = 0
        if writes:
            writes[0].join()
            count = writes[1][0]
        cpu = lb.cpu_seconds(server.proc.pid) - cpu_before
        steal = stolen_seconds() - steal_before
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    cookie = " with a browser's cookies" if headers else ""
    print(f"load {load}; {path}{cookie}: {result['rps']:.0f} req/s, {result['requests']} requests, "
          f"{count} writes, server CPU {cpu:.2f} s = {cpu / result['requests'] * 1e6:.0f} µs/request, "
          f"{steal:.1f} s of CPU stolen by the hypervisor")


if __name__ == "__main__":
    main()
