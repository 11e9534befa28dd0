"""Instructions per request of the benchmark apps, counted by callgrind.

Requests/s and CPU time on this machine move by 10% from run to run; the
number of instructions an app executes for a request does not. This starts
a redis-server on a free port, runs each app under
`valgrind --tool=callgrind` with one worker, logs in 100 sessions, warms up,
then counts the app's user-space instructions over N sequential requests per
route (the kernel's share, the same for every app, is not counted):

    cargo build --release -p server-session-bench --bins
    target/bench-venv/bin/python bench/instructions.py [--requests 5000] [--apps server_session_app,floor_app]

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

from driver import free_port, wait_for_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUTES = ("read", "incr", "login")


def total_instructions(path):
    # The profile's own totals line; instructions are its first event, also
    # when CALLGRIND_EXTRA adds others (`--cache-sim=yes`).
    with open(path) as profile:
        for line in profile:
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    raise SystemExit(f"{path}: no totals line; is it a callgrind profile?")


def measure(app, route, redis_port, requests, workdir):
    port = free_port()
    out = os.path.join(workdir, f"{app}-{route}.callgrind")
    command = ["valgrind", "--tool=callgrind", *os.environ.get("CALLGRIND_EXTRA", "").split(),
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
        subprocess.run(["callgrind_control", "--zero", str(process.pid)], check=True, capture_output=True)
        for i in range(requests):
            one(i)
        subprocess.run(["callgrind_control", "--dump", str(process.pid)], check=True, capture_output=True)
    finally:
        process.terminate()
        process.wait()
    dumps = [f for f in os.listdir(workdir) if f.startswith(os.path.basename(out) + ".")]
    return total_instructions(os.path.join(workdir, sorted(dumps)[-1])) / requests


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--apps", default="server_session_app,floor_app")
    parser.add_argument("--routes", default=",".join(ROUTES))
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
                    per_request = measure(app, route, redis_port, args.requests, workdir)
                    print(f"{app:24} /{route:6} {per_request / 1000:6.1f}k instructions per request", flush=True)
        finally:
            redis.terminate()
            redis.wait()


if __name__ == "__main__":
    main()
