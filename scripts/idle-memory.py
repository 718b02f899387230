#!/usr/bin/env python3
"""What the server's idle RSS is made of, and what of it comes back (docs/benchmarks.md,
"Fifth pass").

Usage (from the repository root, as root: gdb and process_madvise act on another process):
    python3 scripts/idle-memory.py <binary> [trim] [pageout]

Starts the binary on a fresh data directory and, 3 s later, prints VmRSS and the resident KiB
by mapping (the binary's code, its relocated data, libraries, anonymous memory). `trim` then
calls malloc_trim(0) in the server through gdb (what the allocator could give back); `pageout`
asks the kernel to page out the binary's file mappings (process_madvise, MADV_PAGEOUT), prints
the figures, answers 150 requests and prints them again: the code that serving requests maps
back in is the resident code of a server that is not idle.
"""
import ctypes, http.client, importlib.util, os, shutil, subprocess, sys, tempfile, time

SYS_PIDFD_OPEN, SYS_PROCESS_MADVISE, MADV_PAGEOUT = 434, 440, 21


spec = importlib.util.spec_from_file_location(
    "load_bench", os.path.join(os.path.dirname(os.path.abspath(__file__)), "load-bench.py"))
lb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lb)


def show(label, pid):
    kinds = lb.smaps_summary(pid)
    print(f"{label}: VmRSS {lb.status_kib(pid, 'VmRSS')} kB (anonymous "
          f"{lb.status_kib(pid, 'RssAnon')} kB, files {lb.status_kib(pid, 'RssFile')} kB); "
          "KiB by mapping: "
          + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]) if v >= 64),
          flush=True)


def page_out_binary(pid):
    class Iovec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
    ranges = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 5 and "focusflow" in parts[5] and parts[1] in ("r-xp", "r--p"):
                start, end = (int(x, 16) for x in parts[0].split("-"))
                ranges.append(Iovec(start, end - start))
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = libc.syscall(SYS_PIDFD_OPEN, pid, 0)
    vector = (Iovec * len(ranges))(*ranges)
    if libc.syscall(SYS_PROCESS_MADVISE, pidfd, vector, len(ranges), MADV_PAGEOUT, 0) < 0:
        sys.exit(f"process_madvise failed: {os.strerror(ctypes.get_errno())}")


def main():
    binary = os.path.abspath(sys.argv[1])
    port = lb.free_port()
    data = tempfile.mkdtemp(prefix="focusflow-idle-")
    env = {"PATH": os.environ.get("PATH", ""), "HOST": "127.0.0.1", "PORT": str(port),
           "DATA_DIR": data, "RUST_LOG": "warn", "TRANSCRIBER": "none"}
    server = subprocess.Popen([binary], env=env, cwd=data)
    try:
        time.sleep(3)
        show("idle, 3 s after start", server.pid)
        if "trim" in sys.argv[2:]:
            subprocess.run(["gdb", "-p", str(server.pid), "-batch", "-ex",
                            "call (int)malloc_trim(0)"], capture_output=True, check=True)
            show("after malloc_trim(0)", server.pid)
        if "pageout" in sys.argv[2:]:
            page_out_binary(server.pid)
            show("after paging out the binary's file mappings", server.pid)
            for _ in range(50):
                for path in ("/", "/api/health", "/api/jobs"):
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    connection.request("GET", path, headers={"Accept": "text/html"})
                    connection.getresponse().read()
            show("then after 150 requests", server.pid)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
