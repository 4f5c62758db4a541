//! Any trace CSV given to `simulate --trace`: read into rows or refused with the line at fault,
//! never a panic.

#![no_main]

use elastic_yarn_operator::sim::trace::{Trace, TraceProvenance};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let provenance = TraceProvenance {
            name: "fuzz".to_owned(),
            location: "fuzz".to_owned(),
            source: "fuzz".to_owned(),
            license: "none".to_owned(),
            step_seconds: 10,
            rows: 0,
        };
        let _ = Trace::parse(text, provenance);
    }
});
