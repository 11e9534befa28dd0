"""A Flask-Session 0.8 app for the interoperability tests.

Configured by the environment with Flask-Session's own names (the same map
the Rust app reads): sessions in Redis, or with SESSION_TYPE=sqlalchemy in the
database SQLALCHEMY_DATABASE_URI names; served by Werkzeug's threaded WSGI
server on PORT.
"""

import datetime
import decimal
import os
import threading
import uuid

import redis
from flask import Flask, session
from flask_session import Session
from werkzeug.serving import run_simple

UTC = datetime.timezone.utc

# One value of each type, by the names the Rust tests use.
VALUES = {
    "str": "hello",
    "str_unicode": "héllo ✓ 😀",
    "str_empty": "",
    "int": 42,
    "int_negative": -7,
    "int_big_2pow40": 2**40,
    "int_2pow63_minus1": 2**63 - 1,
    "int_u64_max": 2**64 - 1,
    "int_i64_min": -(2**63),
    "float": 3.14,
    "float_1e100": 1e100,
    "bool_true": True,
    "bool_false": False,
    "none": None,
    "list": [1, "two", 3.0, None, True],
    "tuple": (1, 2),
    "set": {1, 2},
    "nested_dict": {"a": {"b": [1, 2, {"c": None}]}, "z": "last"},
    "dict_int_keys": {1: "a", 2: "b"},
    "bytes": b"\x00\x01binary\xff",
    "datetime_utc": datetime.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    "datetime_naive": datetime.datetime(2024, 1, 2, 3, 4, 5, 678901),
    "date": datetime.date(2024, 1, 2),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "decimal": decimal.Decimal("1.10"),
}


def flag(name, default):
    return os.environ.get(name, default).strip().lower() in ("1", "true", "yes", "on")


app = Flask(__name__)
if os.environ.get("SESSION_TYPE", "redis") == "sqlalchemy":
    from flask_sqlalchemy import SQLAlchemy

    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["SQLALCHEMY_DATABASE_URI"]
    app.config.update(
        SESSION_TYPE="sqlalchemy",
        SESSION_SQLALCHEMY=SQLAlchemy(app),
        SESSION_SQLALCHEMY_TABLE=os.environ.get("SESSION_SQLALCHEMY_TABLE", "sessions"),
    )
else:
    app.config.update(
        SESSION_TYPE="redis",
        SESSION_REDIS=redis.Redis.from_url(os.environ["SESSION_REDIS"]),
    )
app.config.update(
    SESSION_KEY_PREFIX=os.environ.get("SESSION_KEY_PREFIX", "session:"),
    SESSION_SERIALIZATION_FORMAT=os.environ.get("SESSION_SERIALIZATION_FORMAT", "msgpack"),
    SESSION_USE_SIGNER=flag("SESSION_USE_SIGNER", "false"),
    SECRET_KEY=os.environ.get("SECRET_KEY"),
    SESSION_PERMANENT=flag("SESSION_PERMANENT", "true"),
)
Session(app)
serializer = app.session_interface.serializer


def as_flask_reads(value):
    """What Flask reads back after storing `value` in the configured format."""
    return serializer.decode(serializer.encode({"v": value}))["v"]


@app.get("/names")
def names():
    return ",".join(VALUES)


@app.get("/put/<name>")
def put(name):
    session[name] = VALUES[name]
    return "true"


@app.get("/check/<name>")
def check(name):
    if name not in session:
        return "missing"
    got, expected = session[name], as_flask_reads(VALUES[name])
    if got == expected and type(got) is type(expected):
        return "true"
    return f"false: {got!r} ({type(got).__name__}), expected {expected!r} ({type(expected).__name__})"


@app.get("/keys")
def keys():
    return ",".join(k for k in session.keys() if k != "_permanent")


@app.get("/set/<key>/<value>")
def set_value(key, value):
    session[key] = value
    return "ok"


@app.get("/get/<key>")
def get_value(key):
    return repr(session.get(key))


@app.get("/permanent")
def permanent():
    return str(session.permanent)


@app.get("/clear")
def clear():
    session.clear()
    return "cleared"


@app.get("/regenerate")
def regenerate():
    app.session_interface.regenerate(session)
    return "regenerated"


if __name__ == "__main__":
    port = int(os.environ["PORT"])
    run_simple("127.0.0.1", port, app, threaded=True)
