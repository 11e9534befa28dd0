#!/usr/bin/env python3
"""Writes the fuzzers' seed inputs into corpus/<target>/ (standard library only).

Seeds are the records, cookies and settings captured from the real
Flask-Session 0.8.0 (tests/fixtures/flask-session-0.8.0.json), plus the
hostile inputs that once crashed, stalled or misled the library. Each file is
named by the SHA-1 of its content, as libFuzzer names corpus entries, so
running this again adds nothing twice.
"""

import base64
import hashlib
import hmac
import json
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent
FIXTURES = HERE.parent / "tests" / "fixtures" / "flask-session-0.8.0.json"
# server_session::fuzzing's id and signing secret.
FUZZ_ID = "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuz"
FUZZ_SECRET = b"fuzzing-secret-0123456789abcdef!"


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    folder = HERE / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def strings(node, wanted):
    """Every string value under a key ending in one of `wanted`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and key.endswith(wanted):
                yield value
            else:
                yield from strings(value, wanted)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value, wanted)


def mp_str(text):
    raw = text.encode()
    assert len(raw) < 32
    return bytes([0xA0 | len(raw)]) + raw


def mp_map(pairs):
    assert len(pairs) < 16
    return bytes([0x80 | len(pairs)]) + b"".join(mp_str(k) + v for k, v in pairs)


def u64(n):
    return b"\xcf" + struct.pack(">Q", n)


def sign(sid, secret):
    derived = hmac.new(secret, b"flask-session", hashlib.sha1).digest()
    tag = hmac.new(derived, sid.encode(), hashlib.sha1).digest()
    return sid + "." + base64.urlsafe_b64encode(tag).rstrip(b"=").decode()


def records(fixtures):
    for text in strings(fixtures, ("value_hex", "stored_hex")):
        try:
            yield bytes.fromhex(text)
        except ValueError:
            pass
    # Hostile records: lengths the bytes cannot hold, nesting past any
    # stack, forged metadata, a key twice.
    yield b"\xdf\xff\xff\xff\xff"
    for header in (b"\xdd", b"\xdf", b"\xdb", b"\xc6", b"\xc9"):
        yield mp_map([("a", header + b"\xff\xff\xff\xff\x01")])
    yield mp_map([("deep", b"\x91" * 1000 + b"\xc0")])
    yield mp_map([("deep", b"\x81\xa1k" * 1000 + b"\xc0")])
    yield mp_map([("deep", b"\x91" * 100 + b"\xc0")])
    yield mp_map(
        [
            ("_permanent", b"\xc3"),
            ("_ss_lifetime", u64(2**64 - 1)),
            ("_ss_created", u64(2**64 - 1)),
            ("user", mp_str("x")),
        ]
    )
    yield mp_map([("a", b"\x01"), ("a", b"\x02")])
    yield mp_map([("ext", b"\xd4\x05\x01"), ("nan", b"\xcb\x7f\xf8" + bytes(6))])
    yield b"\x80"
    # Over the fuzzing engines' 2 KiB record limit, a session but for its
    # size; and user bindings a store writer planted: not text, not UTF-8,
    # with terminal escapes, not a string at all.
    yield mp_map([("blob", b"\xc5\x0b\xb8" + b"Z" * 3000), ("n", b"\x01")])
    yield mp_map([("_ss_user", b"\xa2\xff\xfe"), ("n", b"\x01")])
    yield mp_map([("_ss_user", b"\xc4\x02\xff\xfe"), ("_ss_login", mp_str("x"))])
    yield mp_map([("_ss_user", mp_str("eve\x1b]0;x\x07\n")), ("_ss_seen", u64(2**64 - 1))])
    yield mp_map([("_ss_user", b"\x92\x01\x02")])
    yield b'{"deep":' + b"[" * 1000 + b"]" * 1000 + b"}"
    yield b'{"a":1,"a":2}'
    yield b'{"_permanent":true,"_ss_lifetime":18446744073709551615,"user":"x"}'


def cookies(fixtures):
    for sid in strings(fixtures, ("sid",)):
        yield f"session={sid}"
    for value in strings(fixtures, ("cookie_value", "input")):
        yield f"session={value}"
    signed = sign(FUZZ_ID, FUZZ_SECRET)
    yield f"session={FUZZ_ID}"
    yield f"session={signed}"
    yield "x=\u00e9; session=" + signed
    yield b"x=\xff\xfe; session=" + FUZZ_ID.encode()
    yield f'a=1; session="{FUZZ_ID}"\nsession={signed}'
    yield "; ".join(["session=" + signed[:-1] + "A"] * 50 + ["session=" + signed])
    yield f"session=; session ={FUZZ_ID} ; sessions=x"


def configs(fixtures):
    yield "SESSION_TYPE=memory\nSESSION_COOKIE_NAME=hello_session\nPERMANENT_SESSION_LIFETIME=3600"
    yield "PERMANENT_SESSION_LIFETIME=18446744073709551615"
    yield "SESSION_ID_LENGTH=8"
    yield "SESSION_ID_LENGTH=16\nSESSION_KEY_PREFIX=myapp:sess:"
    yield (
        "SESSION_USE_SIGNER=true\nSECRET_KEY=short\n"
        'SECRET_KEY_FALLBACKS=["old", "older"]\nSESSION_SERIALIZATION_FORMAT=json'
    )
    yield (
        "SESSION_COOKIE_NAME=__Host-sid\nSESSION_COOKIE_SECURE=yes\n"
        "SESSION_COOKIE_SAMESITE=None\nSESSION_COOKIE_PARTITIONED=true\n"
        "SESSION_COOKIE_PATH=/\nSESSION_COOKIE_DOMAIN="
    )
    yield (
        "SESSION_TYPE=redis\nSESSION_REDIS=redis://user:p@ss@cache:6380/2\n"
        "SESSION_REDIS_PASSWORD=pw\nSESSION_REDIS_DB=4"
    )
    yield "SESSION_PERMANENT=False\nSESSION_REFRESH_EACH_REQUEST=off\nSESSION_COOKIE_HTTPONLY=0"
    for note in strings(fixtures, ("note",)):
        if "SESSION_" in note:
            yield note


def main():
    fixtures = json.loads(FIXTURES.read_text())
    for record in records(fixtures):
        write("stored_msgpack", record)
        write("stored_json", record)
    for cookie in cookies(fixtures):
        write("cookie_header", cookie)
    for config in configs(fixtures):
        write("flask_config", config)


if __name__ == "__main__":
    main()
