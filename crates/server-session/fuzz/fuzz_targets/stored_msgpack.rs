//! Bytes stored under a session key, read with the MessagePack format configured.
#![no_main]

use libfuzzer_sys::fuzz_target;
use server_session::Format;
use server_session_fuzz as _;

fuzz_target!(|data: &[u8]| server_session::fuzzing::stored_record(data, Format::MessagePack));
