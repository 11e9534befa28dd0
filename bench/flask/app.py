"""The benchmark's Flask-Session 0.8 app: the same routes as the Rust apps,
on Redis (BENCH_REDIS), served by gunicorn."""

import os

import redis
from flask import Flask, session
from flask_session import Session

app = Flask(__name__)
app.config.update(
    SESSION_TYPE="redis",
    SESSION_REDIS=redis.Redis.from_url(os.environ["BENCH_REDIS"]),
)
Session(app)


@app.get("/plain")
def plain():
    return "ok"


@app.get("/login")
def login():
    session["user_id"] = 42
    session["counter"] = 0
    return "ok"


@app.get("/read")
def read():
    return str(session.get("user_id", "none"))


@app.get("/incr")
def incr():
    session["counter"] = session.get("counter", 0) + 1
    return str(session["counter"])


@app.get("/counter")
def counter():
    return str(session.get("counter", "none"))
