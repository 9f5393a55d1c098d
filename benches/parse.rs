//! Exposition parsing throughput on a ~1 MB node_exporter-style page, both formats.
//! `cargo bench --bench parse`. For the peer ratio, the `prometheus-parse` crate was
//! measured at ~63 MB/s on the same kind of machine (see the storage reference).

use std::time::{Duration, Instant};

use vigie::scrape::parse::{Entry, Format, Parser};

fn page(om: bool) -> String {
    let mut s = String::new();
    let mut i = 0;
    while s.len() < 1 << 20 {
        s.push_str(&format!("# HELP node_cpu_seconds_total_{i} Seconds the CPUs spent in each mode.\n# TYPE node_cpu_seconds_total_{i} counter\n"));
        for cpu in 0..4 {
            for mode in ["idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"] {
                s.push_str(&format!(
                    "node_cpu_seconds_total_{i}{{cpu=\"{cpu}\",mode=\"{mode}\"}} {}.{}\n",
                    12345 + i * cpu,
                    i % 97
                ));
            }
        }
        s.push_str(&format!(
            "node_filesystem_avail_bytes_{i}{{device=\"/dev/vda{}\",fstype=\"ext4\",mountpoint=\"/var/lib/docker/overlay2/{i}\"}} 4.2e+10\n",
            i % 8
        ));
        s.push_str(&format!("node_load1_{i} 0.{}\n", i % 100));
        i += 1;
    }
    if om {
        s.push_str("# EOF\n");
    }
    s
}

fn main() {
    for (label, format, om) in
        [("prometheus-text", Format::PrometheusText, false), ("openmetrics", Format::OpenMetrics, true)]
    {
        let p = page(om);
        let bytes = p.as_bytes();
        let (mut runs, mut samples) = (0u64, 0u64);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            let mut parser = Parser::new(bytes, format);
            while let Some(e) = parser.next().expect("bench page parses") {
                if let Entry::Sample(s) = e {
                    samples += 1;
                    std::hint::black_box(s.value);
                }
            }
            runs += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "parse/{label:<16} {:.2} MB page: {:.1} MB/s, {:.2} M samples/s ({:.1}x prometheus-parse's 63 MB/s)",
            bytes.len() as f64 / 1e6,
            bytes.len() as f64 * runs as f64 / secs / 1e6,
            samples as f64 / secs / 1e6,
            bytes.len() as f64 * runs as f64 / secs / 1e6 / 63.0
        );
    }
}
