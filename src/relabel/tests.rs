use super::*;

fn rule(yaml_like: &[(&str, &str)]) -> RelabelConfig {
    let mut c = RelabelConfig::default();
    for (k, v) in yaml_like {
        match *k {
            "source_labels" => {
                c.source_labels = Some(v.split(',').filter(|s| !s.is_empty()).map(String::from).collect())
            }
            "separator" => c.separator = Some(v.to_string()),
            "regex" => c.regex = Some(Some(v.to_string())),
            "modulus" => c.modulus = Some(v.parse().unwrap()),
            "target_label" => c.target_label = Some(v.to_string()),
            "replacement" => c.replacement = Some(v.to_string()),
            "action" => c.action = Some(v.to_string()),
            other => panic!("{other}"),
        }
    }
    c
}

fn run(rules: &[&[(&str, &str)]], input: &[(&str, &str)]) -> Option<Labels> {
    let compiled: Vec<Arc<CompiledRelabel>> =
        rules.iter().map(|r| Arc::new(CompiledRelabel::compile(&rule(r), NameValidation::Utf8).unwrap())).collect();
    process_labels(&compiled, &Labels::from_pairs(input.iter().copied()))
}

fn l(p: &[(&str, &str)]) -> Option<Labels> {
    Some(Labels::from_pairs(p.iter().copied()))
}

const ABC: &[(&str, &str)] = &[("a", "foo"), ("b", "bar"), ("c", "baz")];

#[test]
fn replace() {
    assert_eq!(
        run(
            &[&[("source_labels", "a"), ("regex", "f(.*)"), ("target_label", "d"), ("replacement", "ch${1}-ch${1}")]],
            ABC
        ),
        l(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "choo-choo")])
    );
    // Joined with the separator; no match is a no-op; empty replacement deletes.
    assert_eq!(
        run(
            &[&[
                ("source_labels", "a,b"),
                ("regex", "f(.*);(.*)r"),
                ("target_label", "a"),
                ("replacement", "b${1}${2}m")
            ]],
            ABC
        ),
        l(&[("a", "boobam"), ("b", "bar"), ("c", "baz")])
    );
    assert_eq!(run(&[&[("source_labels", "a"), ("regex", "nomatch"), ("target_label", "d")]], ABC), l(ABC));
    assert_eq!(
        run(&[&[("source_labels", "a"), ("regex", "foo"), ("target_label", "b"), ("replacement", "")]], ABC),
        l(&[("a", "foo"), ("c", "baz")])
    );
    // Templated target label.
    assert_eq!(
        run(&[&[("source_labels", "a"), ("regex", "(f).*"), ("target_label", "env_${1}"), ("replacement", "x")]], ABC),
        l(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("env_f", "x")])
    );
    // Fast path: no source labels, default regex.
    assert_eq!(
        run(&[&[("target_label", "z"), ("replacement", "static")]], &[("a", "1")]),
        l(&[("a", "1"), ("z", "static")])
    );
    // Anchored: "oo" does not match "foo".
    assert_eq!(run(&[&[("source_labels", "a"), ("regex", "oo"), ("target_label", "d")]], ABC), l(ABC));
}

#[test]
fn keep_drop_and_equal() {
    assert_eq!(run(&[&[("source_labels", "a"), ("regex", "f.*"), ("action", "keep")]], ABC), l(ABC));
    assert_eq!(run(&[&[("source_labels", "a"), ("regex", "b.*"), ("action", "keep")]], ABC), None);
    assert_eq!(run(&[&[("source_labels", "a"), ("regex", "f.*"), ("action", "Drop")]], ABC), None);
    let eq = [("a", "x"), ("b", "x")];
    assert_eq!(run(&[&[("source_labels", "a"), ("target_label", "b"), ("action", "keepequal")]], &eq), l(&eq));
    assert_eq!(run(&[&[("source_labels", "a"), ("target_label", "b"), ("action", "dropequal")]], &eq), None);
    assert_eq!(run(&[&[("source_labels", "a"), ("target_label", "c"), ("action", "KeepEqual")]], ABC), None);
}

#[test]
fn hashmod_matches_prometheus() {
    // Prometheus relabel_test.go: md5("baz") bytes 8..16 mod 1000 = 976.
    assert_eq!(
        run(&[&[("source_labels", "c"), ("target_label", "d"), ("modulus", "1000"), ("action", "hashmod")]], ABC),
        l(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "976")])
    );
}

#[test]
fn label_map_drop_keep_case() {
    let meta = [("__meta_pod", "p"), ("__meta_ns", "n"), ("x", "1")];
    assert_eq!(
        run(&[&[("regex", "__meta_(.+)"), ("action", "labelmap")]], &meta),
        l(&[("__meta_pod", "p"), ("__meta_ns", "n"), ("x", "1"), ("pod", "p"), ("ns", "n")])
    );
    assert_eq!(run(&[&[("regex", "__meta_.*"), ("action", "labeldrop")]], &meta), l(&[("x", "1")]));
    assert_eq!(run(&[&[("regex", "x"), ("action", "labelkeep")]], &meta), l(&[("x", "1")]));
    assert_eq!(run(&[&[("regex", ".*"), ("action", "labeldrop")]], &meta), l(&[]));
    assert_eq!(
        run(&[&[("source_labels", "a"), ("target_label", "up"), ("action", "uppercase")]], &[("a", "MiXeD")]),
        l(&[("a", "MiXeD"), ("up", "MIXED")])
    );
    assert_eq!(
        run(&[&[("source_labels", "a"), ("target_label", "lo"), ("action", "lowercase")]], &[("a", "MiXeD")]),
        l(&[("a", "MiXeD"), ("lo", "mixed")])
    );
}

#[test]
fn first_drop_stops_processing() {
    assert_eq!(
        run(
            &[
                &[("source_labels", "a"), ("regex", "foo"), ("action", "drop")],
                &[("target_label", "z"), ("replacement", "1")]
            ],
            ABC
        ),
        None
    );
}

#[test]
fn validation_errors() {
    let err = |r: &[(&str, &str)]| CompiledRelabel::compile(&rule(r), NameValidation::Utf8).unwrap_err().to_string();
    assert_eq!(err(&[("action", "explode")]), "unknown relabel action \"explode\"");
    assert_eq!(
        err(&[("source_labels", "a")]),
        "relabel configuration for replace action requires 'target_label' value"
    );
    assert_eq!(
        err(&[("source_labels", "a"), ("target_label", "d"), ("action", "hashmod")]),
        "relabel configuration for hashmod requires non-zero modulus"
    );
    assert_eq!(
        err(&[("source_labels", "a"), ("target_label", "b"), ("regex", "x"), ("action", "keepequal")]),
        "keepequal action requires only 'source_labels' and 'target_label', and no other fields"
    );
    assert_eq!(
        err(&[("regex", "x"), ("target_label", "b"), ("action", "labeldrop")]),
        "labeldrop action requires only 'regex', and no other fields"
    );
    assert_eq!(
        err(&[("source_labels", "a"), ("target_label", "b"), ("replacement", "x"), ("action", "lowercase")]),
        "lowercase action requires only 'source_labels' and 'target_label', and no other fields"
    );
    assert!(err(&[("regex", "(")]).starts_with("invalid regex"));
    let legacy =
        CompiledRelabel::compile(&rule(&[("source_labels", "a"), ("target_label", "foo.bar")]), NameValidation::Legacy);
    assert_eq!(legacy.unwrap_err().to_string(), "\"foo.bar\" is invalid 'target_label' for replace action");
    assert!(
        CompiledRelabel::compile(&rule(&[("source_labels", "a"), ("target_label", "foo.bar")]), NameValidation::Utf8)
            .is_ok()
    );
}
