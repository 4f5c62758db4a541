//! Any manifest text given to `validate -f` (and the paths that read pool YAML): refused with
//! a message or validated, never a panic, and never quadratic (deep nesting is refused before
//! the YAML parser sees it).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let now = jiff::Timestamp::UNIX_EPOCH;
        let _ = elastic_yarn_operator::cli::validate_text(text, now);
    }
});
