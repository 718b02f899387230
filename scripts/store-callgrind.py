#!/usr/bin/env python3
"""Instruction counts (valgrind callgrind) of appending a log line and updating a job's status,
with 100, 10,000 and 100,000 jobs in the store: the flatness claim, measured in a way that does
not depend on how busy the machine is.

Usage (from the repository root): python3 scripts/store-callgrind.py [sizes] [operations]
    sizes: comma list, default 100,10000,100000; operations per run: default 1000.

It builds `benches/store_ops.rs` (`cargo build --release --bench store_ops`),
seeds one store per size natively, then for each size and operation runs the driver under
callgrind twice on fresh copies of the seeded store: with 0 operations and with N. The
difference divided by N is the instructions per operation, without the cost of start-up.
"""
import json, os, re, shutil, subprocess, sys, tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = [int(s) for s in (sys.argv[1] if len(sys.argv) > 1 else "100,10000,100000").split(",")]
COUNT = int(sys.argv[2]) if len(sys.argv) > 2 else 1000


def driver():
    if os.environ.get("STORE_OPS_DRIVER"):  # an executable built before
        return os.environ["STORE_OPS_DRIVER"]
    output = subprocess.run(
        ["cargo", "build", "--release", "--bench", "store_ops", "--message-format=json"],
        cwd=REPO, check=True, capture_output=True, text=True).stdout
    for line in output.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message.get("executable") \
                and message["target"]["name"] == "store_ops":
            return message["executable"]
    sys.exit("could not find the store_ops bench executable")


def instructions(binary, store, operation, count):
    with tempfile.TemporaryDirectory() as scratch:
        copy = os.path.join(scratch, "store")
        shutil.copytree(store, copy)
        env = dict(os.environ, STORE_OPS_DIR=copy, STORE_OPS_OPERATION=operation,
                   STORE_OPS_COUNT=str(count))
        result = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch}/callgrind.out",
             binary], env=env, capture_output=True, text=True, check=True)
        return int(re.search(r"Collected : (\d+)", result.stderr).group(1))


def main():
    binary = driver()
    with open("/proc/loadavg") as f:
        print(f"load average before: {f.read().split()[:3]}; driver {binary}", flush=True)
    seeds = tempfile.mkdtemp(prefix="focusflow-callgrind-")
    rows = {}
    try:
        for size in SIZES:
            store = os.path.join(seeds, str(size))
            subprocess.run([binary], env=dict(os.environ, STORE_OPS_DIR=store,
                                              STORE_OPS_SEED=str(size)),
                           check=True, stdout=subprocess.DEVNULL)
            for operation in ("append", "status"):
                base = instructions(binary, store, operation, 0)
                total = instructions(binary, store, operation, COUNT)
                per = (total - base) / COUNT
                rows[(size, operation)] = per
                print(f"  {size} jobs, {operation}: {per:,.0f} instructions per operation",
                      flush=True)
    finally:
        shutil.rmtree(seeds, ignore_errors=True)
    print()
    print(f"| jobs in store | append log line (instructions) | update status (instructions) |")
    print("|---:|---:|---:|")
    for size in SIZES:
        print(f"| {size} | {rows[(size, 'append')]:,.0f} | {rows[(size, 'status')]:,.0f} |")
    small, large = SIZES[0], SIZES[-1]
    print()
    print(f"ratio {large}/{small}: append {rows[(large, 'append')] / rows[(small, 'append')]:.2f}, "
          f"status update {rows[(large, 'status')] / rows[(small, 'status')]:.2f}")
    with open("/proc/loadavg") as f:
        print(f"load average after: {f.read().split()[:3]}")


if __name__ == "__main__":
    main()
