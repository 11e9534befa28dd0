//! A configuration file of NAME=value lines, read by Flask-Session's names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use server_session_fuzz as _;

fuzz_target!(|data: &[u8]| server_session::fuzzing::flask_config(data));
