use super::*;

fn prom(s: &str) -> Vec<OwnedSample> {
    parse_all(s.as_bytes(), Format::PrometheusText).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn om(s: &str) -> Vec<OwnedSample> {
    parse_all(s.as_bytes(), Format::OpenMetrics).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn err(s: &str, f: Format) -> ParseError {
    parse_all(s.as_bytes(), f).unwrap_err()
}

#[test]
fn text_format_basics() {
    let page = "# HELP go_gc A \\\\ help\\nline\n# TYPE go_gc summary\ngo_gc{quantile=\"0.5\"} 4.9e-05\n\n  spaced  { a = \"1\" , b=\"x\\\"y\\\\z\\n\", }\t1 1700000000000\nnan NaN\npinf +Inf\nninf -Inf\n# a comment\nnolabels 3\n";
    let s = prom(page);
    assert_eq!(s.len(), 6);
    assert_eq!(s[0].labels, vec![("quantile".into(), "0.5".into())]);
    assert_eq!(s[0].value, 4.9e-05);
    assert_eq!(s[1].name, "spaced");
    assert_eq!(s[1].labels, vec![("a".into(), "1".into()), ("b".into(), "x\"y\\z\n".into())]);
    assert_eq!(s[1].timestamp_ms, Some(1_700_000_000_000));
    assert!(s[2].value.is_nan());
    assert_eq!((s[3].value, s[4].value), (f64::INFINITY, f64::NEG_INFINITY));
    let mut p = Parser::new(page.as_bytes(), Format::PrometheusText);
    match p.next().unwrap().unwrap() {
        Entry::Help { name, help } => assert_eq!((name, help.as_ref()), ("go_gc", "A \\ help\nline")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(p.next().unwrap().unwrap(), Entry::Type { kind: MetricType::Summary, .. }));
}

#[test]
fn quoted_utf8_names() {
    let s = prom("{\"my.metric\", \"label.name\"=\"v\"} 1\n");
    assert_eq!(s[0].name, "my.metric");
    assert_eq!(s[0].labels, vec![("label.name".into(), "v".into())]);
}

#[test]
fn series_bytes_are_the_cache_key() {
    let page = b"a{x=\"1\"} 1 100\nb 2\n";
    let mut p = Parser::new(page, Format::PrometheusText);
    let Entry::Sample(s) = p.next().unwrap().unwrap() else { panic!() };
    assert_eq!(s.series, b"a{x=\"1\"}");
    let Entry::Sample(s) = p.next().unwrap().unwrap() else { panic!() };
    assert_eq!(s.series, b"b");
}

#[test]
fn openmetrics() {
    let page = "# TYPE foo counter\n# UNIT foo seconds\n# HELP foo Help.\nfoo_total{a=\"b\"} 17.0 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67\nfoo_created 1520430000.123\n# TYPE s stateset\ns{s=\"a\"} 1\n# EOF\n";
    let s = om(page);
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].timestamp_ms, Some(1_520_879_607_789));
    assert_eq!(s[0].value, 17.0);
    assert_eq!(err("a 1\n", Format::OpenMetrics).message, "expected # EOF");
    assert_eq!(err("a 1\n# EOF\nb 2\n", Format::OpenMetrics).message, "unexpected data after # EOF");
}

#[test]
fn malformed_pages_name_the_line() {
    for (page, line, frag) in [
        ("ok 1\nbad{ 2\n", 2, "label"),
        ("a 1\nb{x=\"1\" 2\n", 2, "expected ',' or '}'"),
        ("a{x=\"1\",x=\"2\"} 1\n", 1, "duplicate label name"),
        ("a x\n", 1, "invalid value"),
        ("a 1 1.5\n", 1, "invalid timestamp"),
        ("a{x=\"\\q\"} 1\n", 1, "invalid escape"),
        ("a{x=\"1} 1\n", 1, "unterminated"),
        ("\n\n1a 1\n", 3, "invalid metric name"),
        ("# TYPE a nonsense\n", 1, "invalid metric type"),
        ("a 1 2 3\n", 1, "unexpected"),
        ("a\n", 1, "expected a space"),
    ] {
        let e = err(page, Format::PrometheusText);
        assert_eq!(e.line, line, "{page:?}: {e}");
        assert!(e.message.contains(frag), "{page:?}: {e}");
    }
    let e = parse_all(b"ok 1\n\xff 2\n", Format::PrometheusText).unwrap_err();
    assert_eq!((e.line, e.message.as_str()), (2, "invalid UTF-8"));
}

#[test]
fn content_types() {
    assert_eq!(Format::from_content_type("text/plain; version=0.0.4; charset=utf-8"), Some(Format::PrometheusText));
    assert_eq!(Format::from_content_type("application/openmetrics-text; version=1.0.0"), Some(Format::OpenMetrics));
    assert_eq!(Format::from_content_type("application/json"), None);
}

mod roundtrip {
    use super::*;
    use proptest::prelude::*;

    fn escape(v: &str) -> String {
        v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
    }

    proptest! {
        #[test]
        fn text_and_openmetrics_round_trip(
            series in proptest::collection::vec((
                "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}",
                proptest::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,8}", "(\\PC|[\\\\\"\n]){0,12}", 0..4),
                prop_oneof![any::<f64>(), Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY)],
                proptest::option::of(0i64..4_000_000_000_000),
            ), 0..20)
        ) {
            let mut text = String::new();
            let mut omt = String::new();
            for (name, labels, v, ts) in &series {
                let ls: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
                let vs = if v.is_nan() { "NaN".to_string() } else if v.is_infinite() { if *v > 0.0 { "+Inf".into() } else { "-Inf".into() } } else { format!("{v:?}") };
                let head = format!("{name}{{{}}} {vs}", ls.join(","));
                text.push_str(&head);
                omt.push_str(&head);
                if let Some(t) = ts {
                    text.push_str(&format!(" {t}"));
                    omt.push_str(&format!(" {}.{:03}", t / 1000, t % 1000));
                }
                text.push('\n');
                omt.push('\n');
            }
            omt.push_str("# EOF\n");
            for (page, f) in [(text, Format::PrometheusText), (omt, Format::OpenMetrics)] {
                let got = parse_all(page.as_bytes(), f).unwrap();
                prop_assert_eq!(got.len(), series.len());
                for (g, (name, labels, v, ts)) in got.iter().zip(&series) {
                    prop_assert_eq!(&g.name, name);
                    let want: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    prop_assert_eq!(&g.labels, &want);
                    prop_assert!(g.value.to_bits() == v.to_bits() || (g.value.is_nan() && v.is_nan()));
                    prop_assert_eq!(g.timestamp_ms, *ts);
                }
            }
        }
    }
}
