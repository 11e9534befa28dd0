"""Where an app's CPU goes under load, by component, sampled by perf.

`bench/instructions.py` counts instructions of sequential requests on one
worker; this profiles an app the way the benchmark loads it (wrk, 32
connections, a redis-server on the same machine) and splits its CPU per
request into what serves every request alike and what the session costs:

- runtime and sockets: tokio's scheduler and I/O driver, and the kernel's
  socket work under them;
- HTTP: hyper, axum, tower, `http`, `bytes`;
- Redis connection task: the task that writes commands and reads replies;
- session work: server-session's code, or the floor's handler, with the
  redis-rs calls each makes;
- other.

Each sample is charged to the innermost function whose crate is known (the
allocator's and the kernel's frames are charged to the code that called
them, and shown apart as the `malloc` and `kernel` shares). The apps are
built with line tables into their own target directory, so that perf can
walk their stacks:

    target/bench-venv/bin/python bench/profile.py [--runtime multi-thread] [--rounds 3] [--duration 8]

(needs wrk, and `perf` allowed to sample another process: root, or
`kernel.perf_event_paranoid` at 1 or less; the virtualenv is the one
`bench/run` makes). It also counts system calls and context switches per
request with `perf stat`.
"""

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

import driver

TARGET = os.path.join(driver.ROOT, "target", "profile")
APPS = {"server-session": "server_session_app", "floor": "floor_app"}
GROUPS = ["runtime and sockets", "HTTP", "Redis connection task", "session work", "other"]
# The crate of a function, to the group its samples go to; None: look further out.
CRATES = {
    "server_session": "session work", "server_session_bench": "session work", "floor_app": "session work",
    "redis": "session work", "combine": "session work", "cookie": "session work", "rmp": "session work",
    "rmp_serde": "session work", "base64": "session work", "rand": "session work", "rand_chacha": "session work",
    "hyper": "HTTP", "hyper_util": "HTTP", "httparse": "HTTP", "http": "HTTP", "http_body": "HTTP",
    "http_body_util": "HTTP", "axum": "HTTP", "axum_core": "HTTP", "tower": "HTTP", "matchit": "HTTP",
    "bytes": "HTTP",
    "tokio": "runtime and sockets", "mio": "runtime and sockets", "parking_lot": "runtime and sockets",
    "futures_util": None, "futures_core": None, "core": None, "alloc": None, "std": None, "hashbrown": None,
}
# glibc's allocator, as perf names its functions (inlined ones too).
MALLOC = re.compile(r"((__GI_)?__libc_(malloc|free|realloc|calloc)|_int_(malloc|free|realloc)|tcache_\w+|unlink_chunk"
                    r"|malloc_consolidate|cfree|malloc|free|realloc|calloc)\b")
TRACEPOINTS = {"raw_syscalls:sys_enter": "syscalls", "sched:sched_switch": "context switches"}


def build():
    env = dict(os.environ, CARGO_TARGET_DIR=TARGET, CARGO_PROFILE_RELEASE_DEBUG="line-tables-only")
    command = ["cargo", "build", "--release", "--quiet", "-p", "server-session-bench"]
    for binary in APPS.values():
        command += ["--bin", binary]
    subprocess.run(command, env=env, check=True, cwd=driver.ROOT)


def stacks(data):
    """The call stacks of a perf.data file, innermost frame first."""
    out = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym,dso"], capture_output=True, text=True,
                         errors="replace", check=True).stdout
    stack = []
    for line in out.splitlines():
        if not line.strip():
            if stack:
                yield stack
            stack = []
            continue
        parts = line.strip().split(None, 1)
        if len(parts) == 2:
            stack.append(parts[1])
    if stack:
        yield stack


def crate(frame):
    match = re.match(r"([a-z_][a-z0-9_]*)::", frame.split(" (")[0].lstrip("<&"))
    return match.group(1) if match else None


def group(stack):
    if any("PipelineSink" in f or "multiplexed_connection::{impl#5}::new" in f for f in stack):
        return "Redis connection task"
    for frame in stack:
        if "kernel.kallsyms" in frame or "libc.so" in frame or "[vdso]" in frame:
            continue
        name = crate(frame)
        if name is None or (name in CRATES and CRATES[name] is None):
            continue
        return CRATES.get(name, "other")
    return "other"


def share(leaf):
    if "kernel.kallsyms" in leaf:
        return "kernel"
    if MALLOC.match(leaf.split(" (")[0]) and ("libc.so" in leaf or "(inlined)" in leaf):
        return "malloc"
    return None


def profile_round(args, app, route, backend, workdir, totals, counts):
    """One round of `route` under perf: adds its µs of app CPU per request by
    group (with the malloc and kernel shares) to `totals`, and its
    tracepoint counts per request to `counts`, each divided by the rounds.
    Returns the round's app CPU per request."""
    data = os.path.join(workdir, f"{app.app.key}-{route}.data")
    stat = os.path.join(workdir, "stat.out")
    record = subprocess.Popen(["perf", "record", "-F", str(args.frequency), "--call-graph", "dwarf,8192",
                               "-p", str(app.process.pid), "-o", data],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    count = subprocess.Popen(["perf", "stat", "-x,", "-e", ",".join(TRACEPOINTS), "-p", str(app.process.pid),
                              "-o", stat], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    app.measure(args, route, backend)
    for process in (record, count):
        process.send_signal(2)
        process.wait()
    measured = app.rounds[route][-1]
    requests = max(measured["rps"] * args.duration, 1)
    for line in open(stat):
        fields = line.strip().split(",")
        if len(fields) > 2 and fields[0].isdigit() and fields[2] in TRACEPOINTS:
            counts[TRACEPOINTS[fields[2]]] += int(fields[0]) / requests / args.rounds
    cpu = measured["app_cpu_us"]
    samples = collections.defaultdict(collections.Counter)
    for stack in stacks(data):
        where = samples[group(stack)]
        where["total"] += 1
        kind = share(stack[0])
        if kind:
            where[kind] += 1
    os.remove(data)
    n = sum(s["total"] for s in samples.values()) or 1
    for g, s in samples.items():
        for k, v in s.items():
            totals[g][k] += v * cpu / n / args.rounds
    return cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime", choices=["multi-thread", "per-core"], default="multi-thread")
    parser.add_argument("--routes", default="read,login,incr")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds per round")
    parser.add_argument("--frequency", type=int, default=700, help="samples per second")
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    args.connections, args.threads = 32, 2
    if not args.no_build:
        build()
    env = {"BENCH_MULTI_THREAD": "1"} if args.runtime == "multi-thread" else {}
    workdir = tempfile.mkdtemp(prefix="session-profile-")
    backend = driver.Backend("redis", workdir)
    backend.start()
    running = []
    try:
        for db, (key, binary) in enumerate(APPS.items()):
            command = lambda port, url, b=binary: [os.path.join(TARGET, "release", b), "--port", str(port), "--redis", url]
            running.append(driver.Running(driver.App(key, key, command, env), backend, db, workdir))
            running[-1].make_sessions(1000)
        print(f"µs of app CPU per request, {args.runtime} runtime, mean of {args.rounds} rounds of {args.duration} s\n")
        print("| route | app | " + " | ".join(GROUPS) + " | total | syscalls | context switches |")
        print("|---" * (len(GROUPS) + 5) + "|")
        for route in args.routes.split(","):
            totals = {app.app.key: {g: collections.Counter() for g in GROUPS} for app in running}
            counts = {app.app.key: collections.Counter() for app in running}
            cpus = {app.app.key: [] for app in running}
            # Rounds alternate the apps, so that a drift of the machine's
            # speed hits both alike.
            for i in range(args.rounds):
                for app in running if i % 2 == 0 else running[::-1]:
                    key = app.app.key
                    cpus[key].append(profile_round(args, app, route, backend, workdir, totals[key], counts[key]))
            for app in running:
                key = app.app.key
                cpu = sum(cpus[key]) / len(cpus[key])
                mine = totals[key]
                cells = [f"{mine[g]['total']:.1f} ({mine[g]['malloc']:.1f}, {mine[g]['kernel']:.1f})" for g in GROUPS]
                print(f"| /{route} | {key} | " + " | ".join(cells) +
                      f" | {cpu:.1f} | {counts[key]['syscalls']:.2f} | {counts[key]['context switches']:.2f} |",
                      flush=True)
        print("\n(in brackets: the allocator's share and the kernel's)")
    finally:
        for app in running:
            app.stop()
        backend.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
