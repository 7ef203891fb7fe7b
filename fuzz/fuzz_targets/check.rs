//! Raw bytes into the front end: read as a scenario file, checked, planned, formatted.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| benchctl::fuzzing::exercise(data));
