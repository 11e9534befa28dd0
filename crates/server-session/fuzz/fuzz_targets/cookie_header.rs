//! Cookie header values (one per line), read with and without a signer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use server_session_fuzz as _;

fuzz_target!(|data: &[u8]| server_session::fuzzing::cookie_headers(data));
