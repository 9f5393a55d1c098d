//! Notification templates: Go `text/template` over Alertmanager's data model (`.Receiver`,
//! `.Status`, `.Alerts`, `.GroupLabels`, `.CommonLabels`, `.CommonAnnotations`,
//! `.ExternalURL`), with Alertmanager's functions and default templates, and the user's
//! `templates:` files.
//!
//! The engine (`gotmpl`) has no method calls, so the methods of Alertmanager's data types
//! are rewritten into function calls before parsing: `.Alerts.Firing` becomes
//! `(firing .Alerts)`, `.CommonLabels.SortedPairs` `(sortedPairs .CommonLabels)`, and
//! `.CommonLabels.Remove .GroupLabels.Names` `(remove .CommonLabels (names .GroupLabels))`.

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::{FuncMap, Template, TemplateError, Value};

use super::NotifyData;

const DEFAULTS: &str = include_str!("default.tmpl");

#[derive(Debug, thiserror::Error)]
pub enum TemplateLoadError {
    #[error("reading template {file}: {message}")]
    Read { file: String, message: String },
    #[error("parsing templates: {0}")]
    Parse(String),
}

/// The parsed default and user templates; each integration renders its fields through it.
#[derive(Clone)]
pub struct Templates {
    /// Every definition, joined, so one field's text can call any of them.
    sources: Arc<String>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates")
    }
}

impl Templates {
    /// The defaults followed by the user's files (a later definition of a name wins).
    pub fn load(files: &[std::path::PathBuf]) -> Result<Templates, TemplateLoadError> {
        let mut sources = rewrite_methods(DEFAULTS);
        for f in files {
            let text = std::fs::read_to_string(f)
                .map_err(|e| TemplateLoadError::Read { file: f.display().to_string(), message: e.to_string() })?;
            sources.push_str(&rewrite_methods(&text));
        }
        let t = Templates { sources: Arc::new(sources) };
        t.parse("{{ define \"__vigie_check\" }}{{ end }}").map_err(|e| TemplateLoadError::Parse(e.to_string()))?;
        Ok(t)
    }

    pub fn defaults() -> Templates {
        Templates { sources: Arc::new(rewrite_methods(DEFAULTS)) }
    }

    fn parse(&self, text: &str) -> Result<Template, TemplateError> {
        let body = format!("{}{{{{ define \"{FIELD}\" }}}}{}{{{{ end }}}}", self.sources, rewrite_methods(text));
        Template::new("__text").missing_key(gotmpl::MissingKey::ZeroValue).funcs(funcs()).parse(&body)
    }

    /// Renders one field's template text with the notification's data.
    pub fn render(&self, text: &str, data: &NotifyData) -> Result<String, String> {
        if !text.contains("{{") {
            return Ok(text.to_string());
        }
        let t = self.parse(text).map_err(|e| e.to_string())?;
        t.execute_template_to_string(FIELD, &data_value(data)).map_err(|e| e.to_string())
    }

    /// Renders with Go's `html/template` escaping, as Alertmanager renders email bodies.
    pub fn render_html(&self, text: &str, data: &NotifyData) -> Result<String, String> {
        self.render_html_value(text, &data_value(data))
    }

    pub fn render_html_value(&self, text: &str, data: &Value) -> Result<String, String> {
        let body = format!("{}{{{{ define \"{FIELD}\" }}}}{}{{{{ end }}}}", self.sources, rewrite_methods(text));
        let mut f = funcs();
        f.insert(
            "safeHtml".into(),
            Arc::new(|a: &[Value]| Ok(gotmpl::html::HTML::from(a.first().map(text_of).unwrap_or_default()).into())),
        );
        f.insert(
            "safeUrl".into(),
            Arc::new(|a: &[Value]| Ok(gotmpl::html::URL::from(a.first().map(text_of).unwrap_or_default()).into())),
        );
        let t = gotmpl::html::Template::new("__html")
            .missing_key(gotmpl::MissingKey::ZeroValue)
            .funcs(f)
            .parse(&body)
            .map_err(|e| e.to_string())?;
        t.execute_template_to_string(FIELD, data).map_err(|e| e.to_string())
    }

    /// Renders with data already in the engine's form (fixtures, previews).
    pub fn render_value(&self, text: &str, data: &Value) -> Result<String, String> {
        let t = self.parse(text).map_err(|e| e.to_string())?;
        t.execute_template_to_string(FIELD, data).map_err(|e| e.to_string())
    }

    /// Checks that a field's template text parses (configuration validation).
    pub fn check(&self, text: &str) -> Result<(), String> {
        self.parse(text).map(|_| ()).map_err(|e| e.to_string())
    }
}

/// The field's own text is parsed as this definition, apart from the definitions' text.
const FIELD: &str = "__vigie_field";

const METHODS: [&str; 6] = ["Firing", "Resolved", "SortedPairs", "Names", "Values", "Remove"];

/// Rewrites `X.Method` (X a `.Field` chain or `$var` chain) inside actions into the
/// function form the engine understands. Text outside `{{ }}` and string literals are
/// left alone.
pub fn rewrite_methods(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let action = &rest[start + 2..start + end];
        out.push_str("{{");
        out.push_str(&rewrite_action(action));
        out.push_str("}}");
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

fn rewrite_action(action: &str) -> String {
    // Repeat until no method is left, so `.A.SortedPairs.Values` becomes nested calls.
    let mut s = action.to_string();
    loop {
        let Some((chain_start, method_start, method)) = find_method(&s) else { return s };
        // No receiver written: the method of the current `.` (no data field has these names).
        let chain = if chain_start == method_start { "." } else { &s[chain_start..method_start] };
        let after = method_start + 1 + method.len();
        let fname = lower_first(method);
        let replaced = if method == "Remove" {
            // A method with an argument: the arguments that follow become the function's.
            format!("{fname} {chain}")
        } else {
            format!("({fname} {chain})")
        };
        s = format!("{}{}{}", &s[..chain_start], replaced, &s[after..]);
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// The first `chain.Method` outside string literals: (start of chain, index of the dot
/// before the method, method name).
fn find_method(s: &str) -> Option<(usize, usize, &'static str)> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut in_str: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = in_str {
            if c == b'\\' && q == b'"' {
                i += 2;
                continue;
            }
            if c == q {
                in_str = None;
            }
            i += 1;
            continue;
        }
        if c == b'"' || c == b'`' {
            in_str = Some(c);
            i += 1;
            continue;
        }
        if c == b'.' {
            for m in METHODS {
                let end = i + 1 + m.len();
                let boundary = b.get(end).is_none_or(|n| !(n.is_ascii_alphanumeric() || *n == b'_'));
                if s[i + 1..].starts_with(m) && boundary {
                    return Some((chain_start(b, i), i, m));
                }
            }
        }
        i += 1;
    }
    None
}

/// Walks back over the receiver of the method whose dot is at `dot`: `.Field.Field`,
/// `$var.Field`, `$.Field` or a parenthesised expression. Returns `dot` when there is
/// none (a method of the current `.`).
fn chain_start(b: &[u8], dot: usize) -> usize {
    let mut j = dot;
    loop {
        let mut k = j;
        while k > 0 && (b[k - 1].is_ascii_alphanumeric() || b[k - 1] == b'_') {
            k -= 1;
        }
        if k < j {
            if k > 0 && b[k - 1] == b'.' {
                j = k - 1;
                continue;
            }
            if k > 0 && b[k - 1] == b'$' {
                return k - 1;
            }
            return k;
        }
        if j > 0 && b[j - 1] == b'$' {
            return j - 1;
        }
        if j > 0 && b[j - 1] == b')' {
            let mut depth = 0usize;
            let mut p = j - 1;
            loop {
                match b[p] {
                    b')' => depth += 1,
                    b'(' => {
                        depth -= 1;
                        if depth == 0 {
                            return p;
                        }
                    }
                    _ => {}
                }
                if p == 0 {
                    return j;
                }
                p -= 1;
            }
        }
        return j;
    }
}

fn s(v: &str) -> Value {
    Value::String(Arc::from(v))
}

fn kv(m: &BTreeMap<String, String>) -> Value {
    Value::Map(Arc::new(m.iter().map(|(k, v)| (Arc::from(k.as_str()), s(v))).collect()))
}

fn data_value(d: &NotifyData) -> Value {
    let alerts: Vec<Value> = d
        .alerts
        .iter()
        .map(|a| {
            let mut m = BTreeMap::new();
            m.insert(Arc::from("Status"), s(a.status));
            m.insert(Arc::from("Labels"), kv(&a.labels));
            m.insert(Arc::from("Annotations"), kv(&a.annotations));
            m.insert(Arc::from("StartsAt"), s(&go_time_string(a.starts_at_ms)));
            m.insert(Arc::from("EndsAt"), s(&go_time_string(a.ends_at_ms)));
            m.insert(Arc::from("GeneratorURL"), s(&a.generator_url));
            m.insert(Arc::from("Fingerprint"), s(&a.fingerprint));
            Value::Map(Arc::new(m))
        })
        .collect();
    let mut m = BTreeMap::new();
    m.insert(Arc::from("Receiver"), s(&d.receiver));
    m.insert(Arc::from("Status"), s(d.status));
    m.insert(Arc::from("Alerts"), Value::List(alerts.into()));
    m.insert(Arc::from("GroupLabels"), kv(&d.group_labels));
    m.insert(Arc::from("CommonLabels"), kv(&d.common_labels));
    m.insert(Arc::from("CommonAnnotations"), kv(&d.common_annotations));
    m.insert(Arc::from("ExternalURL"), s(&d.external_url));
    Value::Map(Arc::new(m))
}

/// How Go prints a `time.Time` in a template (`2006-01-02 15:04:05.999999999 +0000 UTC`);
/// 0 is Go's zero time.
pub fn go_time_string(ms: i64) -> String {
    if ms == 0 {
        return "0001-01-01 00:00:00 +0000 UTC".into();
    }
    // From whole milliseconds: a float of seconds would print .123 as .122999907.
    let secs = ms.div_euclid(1000);
    let base = crate::rules::template::go_time_string(secs as f64);
    let frac = ms.rem_euclid(1000);
    if frac == 0 {
        return base;
    }
    let digits = format!("{frac:03}");
    let (date_time, zone) = base.split_once(" +").unwrap_or((&base, "0000 UTC"));
    format!("{date_time}.{} +{zone}", digits.trim_end_matches('0'))
}

fn fail(m: impl Into<String>) -> TemplateError {
    TemplateError::Exec(m.into())
}

fn text_of(v: &Value) -> String {
    text(v)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        Value::Nil => String::new(),
        other => other.to_string(),
    }
}

fn map_arg(args: &[Value], i: usize, f: &str) -> Result<Arc<BTreeMap<Arc<str>, Value>>, TemplateError> {
    match args.get(i) {
        Some(Value::Map(m)) => Ok(m.clone()),
        Some(Value::Nil) | None => Ok(Arc::new(BTreeMap::new())),
        Some(other) => Err(fail(format!("{f}: expected a map, got {other}"))),
    }
}

/// Alertmanager's `KV.SortedPairs` order, which `Names` and `Values` follow too:
/// `alertname` first, then by name.
fn pair_order(m: &BTreeMap<Arc<str>, Value>) -> Vec<&Arc<str>> {
    let mut keys: Vec<&Arc<str>> = m.keys().collect();
    keys.sort_by_key(|k| k.as_ref() != "alertname");
    keys
}

fn list_of_strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::List(l)) => l.iter().map(text).collect(),
        Some(Value::Nil) | None => Vec::new(),
        Some(other) => vec![text(other)],
    }
}

fn funcs() -> FuncMap {
    let mut f = FuncMap::new();
    let mut add = |name: &str, func: gotmpl::ValueFunc| {
        f.insert(name.to_string(), func);
    };
    let by_status = |want: &'static str| -> gotmpl::ValueFunc {
        Arc::new(move |args: &[Value]| match args.first() {
            Some(Value::List(l)) => Ok(Value::List(
                l.iter()
                    .filter(|a| matches!(a, Value::Map(m) if m.get("Status").map(text).as_deref() == Some(want)))
                    .cloned()
                    .collect::<Vec<_>>()
                    .into(),
            )),
            _ => Ok(Value::List(Vec::new().into())),
        })
    };
    add("firing", by_status("firing"));
    add("resolved", by_status("resolved"));
    add(
        "sortedPairs",
        Arc::new(|args: &[Value]| {
            let m = map_arg(args, 0, "SortedPairs")?;
            let pairs: Vec<Value> = pair_order(&m)
                .into_iter()
                .map(|k| {
                    let mut p = BTreeMap::new();
                    p.insert(Arc::from("Name"), Value::String(k.clone()));
                    p.insert(Arc::from("Value"), m[k].clone());
                    Value::Map(Arc::new(p))
                })
                .collect();
            Ok(Value::List(pairs.into()))
        }),
    );
    add(
        "names",
        Arc::new(|args: &[Value]| match args.first() {
            Some(Value::List(pairs)) => {
                Ok(Value::List(
                    pairs
                        .iter()
                        .map(|p| {
                            if let Value::Map(m) = p {
                                m.get("Name").cloned().unwrap_or(Value::Nil)
                            } else {
                                Value::Nil
                            }
                        })
                        .collect::<Vec<_>>()
                        .into(),
                ))
            }
            _ => {
                let m = map_arg(args, 0, "Names")?;
                Ok(Value::List(pair_order(&m).into_iter().map(|k| Value::String(k.clone())).collect::<Vec<_>>().into()))
            }
        }),
    );
    add(
        "values",
        Arc::new(|args: &[Value]| match args.first() {
            Some(Value::List(pairs)) => {
                Ok(Value::List(
                    pairs
                        .iter()
                        .map(|p| {
                            if let Value::Map(m) = p {
                                m.get("Value").cloned().unwrap_or(Value::Nil)
                            } else {
                                Value::Nil
                            }
                        })
                        .collect::<Vec<_>>()
                        .into(),
                ))
            }
            _ => {
                let m = map_arg(args, 0, "Values")?;
                Ok(Value::List(pair_order(&m).into_iter().map(|k| m[k].clone()).collect::<Vec<_>>().into()))
            }
        }),
    );
    add(
        "remove",
        Arc::new(|args: &[Value]| {
            let m = map_arg(args, 0, "Remove")?;
            let drop = list_of_strings(args.get(1));
            let kept: BTreeMap<Arc<str>, Value> = m
                .iter()
                .filter(|(k, _)| !drop.iter().any(|d| d.as_str() == k.as_ref()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Ok(Value::Map(Arc::new(kept)))
        }),
    );
    add("toUpper", Arc::new(|a: &[Value]| Ok(s(&a.first().map(text).unwrap_or_default().to_uppercase()))));
    add("toLower", Arc::new(|a: &[Value]| Ok(s(&a.first().map(text).unwrap_or_default().to_lowercase()))));
    add("title", Arc::new(|a: &[Value]| Ok(s(&title(&a.first().map(text).unwrap_or_default())))));
    add("trimSpace", Arc::new(|a: &[Value]| Ok(s(a.first().map(text).unwrap_or_default().trim()))));
    add(
        "join",
        Arc::new(|a: &[Value]| {
            let sep = a.first().map(text).unwrap_or_default();
            Ok(s(&list_of_strings(a.get(1)).join(&sep)))
        }),
    );
    add(
        "match",
        Arc::new(|a: &[Value]| {
            let re = crate::model::compile_go_regex_unanchored(&a.first().map(text).unwrap_or_default())
                .map_err(|e| fail(e.to_string()))?;
            Ok(Value::Bool(re.is_match(&a.get(1).map(text).unwrap_or_default())))
        }),
    );
    add(
        "reReplaceAll",
        Arc::new(|a: &[Value]| {
            let re = crate::model::compile_go_regex_unanchored(&a.first().map(text).unwrap_or_default())
                .map_err(|e| fail(e.to_string()))?;
            let repl = a.get(1).map(text).unwrap_or_default();
            Ok(s(&re.replace_all(&a.get(2).map(text).unwrap_or_default(), repl.as_str())))
        }),
    );
    add("safeHtml", Arc::new(|a: &[Value]| Ok(a.first().cloned().unwrap_or(Value::Nil))));
    add("safeUrl", Arc::new(|a: &[Value]| Ok(a.first().cloned().unwrap_or(Value::Nil))));
    add(
        "stringSlice",
        Arc::new(|a: &[Value]| Ok(Value::List(a.iter().map(|v| s(&text(v))).collect::<Vec<_>>().into()))),
    );
    add(
        "urlUnescape",
        Arc::new(|a: &[Value]| {
            let t = a.first().map(text).unwrap_or_default();
            let decoded: String =
                form_urlencoded::parse(format!("x={t}").as_bytes()).map(|(_, v)| v.into_owned()).collect();
            Ok(s(&decoded))
        }),
    );
    add(
        "humanizeDuration",
        Arc::new(|a: &[Value]| {
            let v = match a.first() {
                Some(Value::Float(f)) => *f,
                Some(Value::Int(i)) => *i as f64,
                Some(other) => text(other).parse().map_err(|_| fail("humanizeDuration: not a number"))?,
                None => 0.0,
            };
            Ok(s(&crate::rules::template::humanize_duration(v)))
        }),
    );
    f
}

/// `cases.Title(language.AmericanEnglish)` as Alertmanager uses it: each word's first
/// letter upper-cased and the rest lower-cased (`o'neil` → `O'neil`).
fn title(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut in_word = false;
    for c in t.chars() {
        if in_word {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
        in_word = c.is_alphanumeric() || c == '\'';
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> NotifyData {
        use crate::alert::store::{StoredAlert, fingerprint};
        use crate::model::Labels;
        let mk = |pairs: &[(&str, &str)], ends: i64| {
            let labels = Labels::from_pairs(pairs.iter().copied());
            StoredAlert {
                fingerprint: fingerprint(&labels),
                labels,
                annotations: [("summary".to_string(), "s".to_string())].into(),
                starts_at_ms: 1_000,
                ends_at_ms: ends,
                generator_url: String::new(),
                updated_at_ms: 0,
                timeout: false,
            }
        };
        let alerts = [
            mk(&[("alertname", "Disk"), ("job", "db"), ("instance", "a")], 0),
            mk(&[("alertname", "Disk"), ("job", "db"), ("instance", "b")], 2_000),
        ];
        let group = Labels::from_pairs([("alertname", "Disk")]);
        NotifyData::new("r", "{}:{}", &group, &alerts, 0, 5_000, "http://vigie", "first notification")
    }

    fn json_value(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                n.as_i64().map(Value::Int).unwrap_or(Value::Float(n.as_f64().unwrap_or(0.0)))
            }
            serde_json::Value::String(x) => s(x),
            serde_json::Value::Array(a) => Value::List(a.iter().map(json_value).collect::<Vec<_>>().into()),
            serde_json::Value::Object(o) => {
                Value::Map(Arc::new(o.iter().map(|(k, v)| (Arc::from(k.as_str()), json_value(v))).collect()))
            }
        }
    }

    /// Every default template renders byte for byte what the real amtool 0.25 rendered
    /// from the same data (tests/notify_templates/README.md tells how they were made).
    #[test]
    fn default_templates_match_amtool() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/notify_templates");
        let t = Templates::defaults();
        let mut checked = 0;
        let mut failures = Vec::new();
        for dir in [root.clone(), root.join("firing_resolved")] {
            let data: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("data.json")).unwrap()).unwrap();
            let data = json_value(&data);
            for e in std::fs::read_dir(&dir).unwrap().flatten() {
                let file = e.file_name().to_string_lossy().to_string();
                let Some(name) = file.strip_suffix(".out") else { continue };
                if name.ends_with(".htmlmode") || name == "go_printing" {
                    continue;
                }
                let arg =
                    if matches!(name, "__text_alert_list" | "pagerduty.default.instances") { ".Alerts" } else { "." };
                let want = std::fs::read_to_string(e.path()).unwrap();
                let got = t.render_value(&format!("{{{{ template \"{name}\" {arg} }}}}"), &data);
                checked += 1;
                if got.as_deref() != Ok(want.as_str()) {
                    failures.push(format!("{}/{name}:\n--- amtool\n{want}\n--- vigie\n{got:?}", dir.display()));
                }
            }
        }
        assert!(checked >= 60, "only {checked} fixtures found");
        assert!(failures.is_empty(), "{} of {checked} differ:\n{}", failures.len(), failures.join("\n"));
    }

    #[test]
    fn renders_alertmanager_methods() {
        let t = Templates::defaults();
        assert_eq!(t.render("{{ template \"__subject\" . }}", &data()).unwrap(), "[FIRING:1] Disk (db)");
        assert_eq!(
            t.render("{{ range .Alerts.Resolved }}{{ .Labels.instance }} {{ .EndsAt }}{{ end }}", &data()).unwrap(),
            "b 1970-01-01 00:00:02 +0000 UTC"
        );
        assert_eq!(
            t.render("{{ range .CommonLabels.SortedPairs }}{{ .Name }}={{ .Value }};{{ end }}", &data()).unwrap(),
            "alertname=Disk;job=db;"
        );
        assert!(t.render("{{ nope }}", &data()).is_err());
    }

    #[test]
    fn methods_become_functions() {
        assert_eq!(rewrite_methods("{{ .Alerts.Firing | len }}"), "{{ (firing .Alerts) | len }}");
        assert_eq!(rewrite_methods("{{ range .CommonLabels.SortedPairs }}"), "{{ range (sortedPairs .CommonLabels) }}");
        assert_eq!(
            rewrite_methods("{{ with .CommonLabels.Remove .GroupLabels.Names }}{{ .Values | join \" \" }}{{ end }}"),
            "{{ with remove .CommonLabels (names .GroupLabels) }}{{ (values .) | join \" \" }}{{ end }}"
        );
        assert_eq!(rewrite_methods("{{ $a.Labels.SortedPairs }}"), "{{ (sortedPairs $a.Labels) }}");
        assert_eq!(rewrite_methods("a.Names {{ \".x.Firing\" }}"), "a.Names {{ \".x.Firing\" }}");
        assert_eq!(
            rewrite_methods("{{ (index .Alerts 0).Labels.SortedPairs }}"),
            "{{ (sortedPairs (index .Alerts 0).Labels) }}"
        );
        assert_eq!(rewrite_methods("{{ $.Alerts.Firing }}"), "{{ (firing $.Alerts) }}");
        assert_eq!(rewrite_methods("{{ .Labels.SortedPairs.Values }}"), "{{ (values (sortedPairs .Labels)) }}");
    }
}
