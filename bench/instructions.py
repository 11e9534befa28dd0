"""Instructions per request of the benchmark apps, counted by callgrind.

Requests/s and CPU time on this machine move by 10% from run to run; the
number of instructions an app executes for a request does not. This starts
a redis-server on a free port, runs each app under
`valgrind --tool=callgrind` with one worker, logs in 100 sessions, warms up,
then counts the app's user-space instructions over N sequential requests per
route (the kernel's share, the same for every app, is not counted):

    cargo build --release -p server-session-bench --bins
    target/bench-venv/bin/python bench/instructions.py [--requests 5000] [--apps server_session_app,floor_app]

Sequential requests find everything they touch in the cache, and none of
them shares a system call with another. `--connections 32` counts instead
what wrk's load of 32 connections (`--seconds` of it, after as long again
to warm up) costs per request, as the benchmark loads the app, and
`--cache` has callgrind simulate the caches too: it then also prints the
first-level data and instruction cache misses per request, which is where
the larger futures and buffers of one app show up against another's (a
miss costs a dozen cycles or more, an instruction often less than one).
callgrind simulates the caches of the CPU it runs on, so misses compare
between machines only with the sizes pinned, for example
`CALLGRIND_EXTRA=--D1=32768,8,64`.

(the virtualenv is the one `bench/run` makes; this shares its helpers).
`CALLGRIND_EXTRA` adds options to valgrind's command line, for example
`CALLGRIND_EXTRA=--dump-instr=yes` for costs per machine instruction, and
the apps read their own environment (`BENCH_NO_REFRESH=1` and the rest).

It prints one line per app and route: thousands of instructions per request.
"""

import argparse
import http.client
import os
import subprocess
import tempfile

from driver import free_port, run_wrk, wait_for_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUTES = ("read", "incr", "login")


def totals(path):
    """The profile's totals, by event (`Ir`, and with the cache simulated
    `D1mr`, `D1mw`, `I1mr` and the rest)."""
    events = None
    with open(path) as profile:
        for line in profile:
            if line.startswith("events:"):
                events = line.split()[1:]
            if line.startswith(("totals:", "summary:")) and events:
                return dict(zip(events, (int(n) for n in line.split()[1:])))
    raise SystemExit(f"{path}: no totals line; is it a callgrind profile?")


def measure(app, route, redis_port, args, workdir):
    """The app's totals per request on `route`."""
    port = free_port()
    out = os.path.join(workdir, f"{app}-{route}.callgrind")
    extra = os.environ.get("CALLGRIND_EXTRA", "").split() + (["--cache-sim=yes"] if args.cache else [])
    command = ["valgrind", "--tool=callgrind", *extra,
               f"--callgrind-out-file={out}",
               os.path.join(ROOT, "target", "release", app), "--port", str(port),
               "--redis", f"redis://127.0.0.1:{redis_port}/3"]
    process = subprocess.Popen(command, env=dict(os.environ, BENCH_WORKERS="1"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process, app)
        client = http.client.HTTPConnection("127.0.0.1", port)

        def get(path, cookie=None):
            client.request("GET", path, headers={"Cookie": cookie} if cookie else {})
            response = client.getresponse()
            response.read()
            return response

        cookies = [get("/login").getheader("set-cookie").split(";")[0] for _ in range(100)]

        def one(i):
            get(f"/{route}", None if route == "login" else cookies[i % len(cookies)])

        for i in range(200):
            one(i)
        if args.connections:
            jar = None
            if route != "login":
                jar = os.path.join(workdir, "cookies.txt")
                with open(jar, "w") as f:
                    f.write("\n".join(cookies) + "\n")
            load = argparse.Namespace(threads=1, connections=args.connections, duration=args.seconds)
            run_wrk(load, port, route, jar)
        subprocess.run(["callgrind_control", "--zero", str(process.pid)], check=True, capture_output=True)
        if args.connections:
            requests = run_wrk(load, port, route, jar)["requests"]
        else:
            requests = args.requests
            for i in range(requests):
                one(i)
        subprocess.run(["callgrind_control", "--dump", str(process.pid)], check=True, capture_output=True)
    finally:
        process.terminate()
        process.wait()
    dumps = [f for f in os.listdir(workdir) if f.startswith(os.path.basename(out) + ".")]
    return {event: n / max(requests, 1) for event, n in totals(os.path.join(workdir, sorted(dumps)[-1])).items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--apps", default="server_session_app,floor_app")
    parser.add_argument("--routes", default=",".join(ROUTES))
    parser.add_argument("--connections", type=int, default=0,
                        help="load the app with wrk over this many connections instead of sequential requests")
    parser.add_argument("--seconds", type=int, default=10, help="with --connections: seconds of load counted")
    parser.add_argument("--cache", action="store_true", help="simulate the caches and print their misses")
    parser.add_argument("--keep", metavar="DIR", help="keep the callgrind profiles in DIR, for callgrind_annotate")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.keep or scratch
        os.makedirs(workdir, exist_ok=True)
        redis_port = free_port()
        redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no", "--dir", workdir],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(redis_port, redis, "redis-server")
            for app in args.apps.split(","):
                for route in args.routes.split(","):
                    per_request = measure(app, route, redis_port, args, workdir)
                    line = f"{app:24} /{route:6} {per_request['Ir'] / 1000:6.1f}k instructions per request"
                    if "D1mr" in per_request:
                        line += (f", {per_request['D1mr'] + per_request['D1mw']:5.0f} data and"
                                 f" {per_request['I1mr']:5.0f} instruction cache misses")
                    print(line, flush=True)
        finally:
            redis.terminate()
            redis.wait()


if __name__ == "__main__":
    main()
