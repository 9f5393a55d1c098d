//! Feeds arbitrary bytes to the exposition parser in both formats: it must never panic.
//! Run with `cargo fuzz run exposition` (nightly) from the repository root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie::scrape::parse::{Entry, Format, Parser};

fuzz_target!(|data: &[u8]| {
    for format in [Format::PrometheusText, Format::OpenMetrics] {
        let mut p = Parser::new(data, format);
        while let Ok(Some(e)) = p.next() {
            if let Entry::Sample(s) = e {
                for (n, v) in s.labels() {
                    std::hint::black_box((n, v));
                }
            }
        }
    }
});
