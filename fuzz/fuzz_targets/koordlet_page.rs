//! Any koordlet `/metrics` page: parsed into a reading or refused with an error, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = koordlet_metrics::koordlet::parse_page(text, None);
        let _ = koordlet_metrics::koordlet::parse_page(text, Some("node-1"));
    }
});
