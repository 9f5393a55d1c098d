//! Templates in alert labels and annotations: Go `text/template` (the `gotmpl` crate) with
//! Prometheus's data (`$labels`, `$value`, `$externalLabels`, `$externalURL`) and function
//! set (`humanize*`, `query`, `first`, `label`, `value`, `reReplaceAll`, …).
//!
//! Differences from Prometheus, both from the template engine: a missing label prints as
//! the empty string (Prometheus's `missingkey=zero`) only where it is printed directly or
//! passed to one of these functions, and a float printed without a function uses Rust's
//! shortest form (`1000000`) where Go prints `1e+06`.

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::{FuncMap, Template, TemplateError, Value};

use crate::model::Labels;
use crate::promql::Sample;

/// Runs a PromQL query for the `query` function: an instant vector at the evaluation time.
pub type QueryFn = Arc<dyn Fn(&str) -> Result<Vec<Sample>, String> + Send + Sync>;

/// What changes from one evaluation to the next: the templates of a rule are parsed once
/// and their functions read the current evaluation from here.
#[derive(Clone, Default)]
pub struct Evaluation {
    /// Evaluation time in milliseconds.
    pub time_ms: i64,
    pub query: Option<QueryFn>,
    pub external_url: String,
}

/// The evaluation a rule's parsed templates read.
pub type EvalCell = Arc<parking_lot::RwLock<Evaluation>>;

/// What a rule's templates see.
#[derive(Clone)]
pub struct TemplateData<'a> {
    pub labels: &'a Labels,
    pub external_labels: &'a Labels,
    pub external_url: &'a str,
    pub value: f64,
    /// Evaluation time in milliseconds.
    pub time_ms: i64,
    pub query: Option<QueryFn>,
}

const PREAMBLE: &str =
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

fn map_of(labels: &Labels) -> Value {
    let m: BTreeMap<Arc<str>, Value> =
        labels.iter().map(|l| (Arc::from(l.name.as_str()), Value::String(Arc::from(l.value.as_str())))).collect();
    Value::Map(Arc::new(m))
}

fn string(s: impl AsRef<str>) -> Value {
    Value::String(Arc::from(s.as_ref()))
}

fn fail(message: impl Into<String>) -> TemplateError {
    TemplateError::Exec(message.into())
}

/// A value as text, with a missing value (nil) as the empty string.
fn text_arg(args: &[Value], i: usize) -> String {
    match args.get(i) {
        None | Some(Value::Nil) => String::new(),
        Some(Value::String(s)) => s.to_string(),
        Some(v) => v.to_string(),
    }
}

/// Prometheus's `ConvertToFloat`: numbers, numeric strings.
fn float_arg(args: &[Value], i: usize) -> Result<f64, TemplateError> {
    match args.get(i) {
        Some(Value::Float(f)) => Ok(*f),
        Some(Value::Int(n)) => Ok(*n as f64),
        Some(Value::Uint(n)) => Ok(*n as f64),
        Some(Value::String(s)) => {
            parse_float(s).ok_or_else(|| fail(format!("strconv.ParseFloat: parsing {s:?}: invalid syntax")))
        }
        Some(other) => Err(fail(format!("can't convert {} to float", other.type_name()))),
        None => Err(fail("wrong number of args: want 1 got 0")),
    }
}

fn parse_float(s: &str) -> Option<f64> {
    match s.trim() {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        t => t.parse().ok(),
    }
}

/// Go's `fmt.Sprintf("%.<prec>g", v)`.
pub fn go_format_g(v: f64, prec: usize) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let prec = prec.max(1);
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let e = format!("{:.*e}", prec - 1, v);
    let (mantissa, exp) = e.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("integer exponent");
    let trim = |s: &str| -> String {
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s.to_string() }
    };
    if exp < -4 || exp >= prec as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim(&format!("{v:.decimals$}"))
    }
}

/// A magnitude below 1 scaled up by thousands, with its SI prefix (milli … yocto).
fn scale_small(mut v: f64) -> (f64, &'static str) {
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    (v, prefix)
}

fn humanize(v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return go_format_g(v, 4);
    }
    let mut v = v;
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        (v, prefix) = scale_small(v);
    }
    format!("{}{prefix}", go_format_g(v, 4))
}

fn humanize_1024(v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return go_format_g(v, 4);
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", go_format_g(v, 4))
}

/// prometheus/common's `HumanizeDuration` (seconds in).
pub fn humanize_duration(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return go_format_g(v, 4);
    }
    if v == 0.0 {
        return format!("{}s", go_format_g(v, 4));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let v = v.abs();
        let d = v as i64;
        let (seconds, minutes, hours, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        return if days != 0 {
            format!("{sign}{days}d {hours}h {minutes}m {seconds}s")
        } else if hours != 0 {
            format!("{sign}{hours}h {minutes}m {seconds}s")
        } else if minutes != 0 {
            format!("{sign}{minutes}m {seconds}s")
        } else {
            format!("{sign}{}s", go_format_g(v, 4))
        };
    }
    let (v, prefix) = scale_small(v);
    format!("{}{prefix}s", go_format_g(v, 4))
}

/// Prometheus's `floatToTime` bound: the time must fit int64 nanoseconds.
fn check_time(secs: f64) -> Result<(), TemplateError> {
    if secs.abs() >= i64::MAX as f64 / 1e9 {
        return Err(fail(format!("{secs} overflows int64")));
    }
    Ok(())
}

/// [`go_time_string`] for a time that fits int64 nanoseconds, else an error.
fn time_string(secs: f64) -> Result<String, TemplateError> {
    check_time(secs)?;
    Ok(go_time_string(secs))
}

/// Go's `time.Time.String()` in UTC for Unix seconds: `2006-01-02 15:04:05.999999999 +0000 UTC`.
pub fn go_time_string(secs: f64) -> String {
    let whole = secs.floor() as i64;
    let nanos = ((secs - whole as f64) * 1e9).round() as i64;
    let (whole, nanos) = if nanos >= 1_000_000_000 { (whole + 1, nanos - 1_000_000_000) } else { (whole, nanos) };
    let days = whole.div_euclid(86400);
    let rem = whole.rem_euclid(86400);
    let (y, m, d) = crate::model::civil::civil_from_days(days);
    let mut out = format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60);
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    out
}

fn sample_value(s: &Sample) -> Value {
    let mut m = BTreeMap::new();
    m.insert(Arc::from("Labels"), map_of(&s.labels));
    m.insert(Arc::from("Value"), Value::Float(s.v));
    Value::Map(Arc::new(m))
}

fn sample_field<'v>(v: &'v Value, field: &str) -> Option<&'v Value> {
    match v {
        Value::Map(m) => m.get(field),
        _ => None,
    }
}

fn query_escape(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn funcs(cell: &EvalCell) -> FuncMap {
    let mut f = FuncMap::new();
    let mut add = |name: &str, func: gotmpl::ValueFunc| {
        f.insert(name.to_string(), func);
    };
    let c = cell.clone();
    add(
        "query",
        Arc::new(move |args: &[Value]| {
            let q = text_arg(args, 0);
            let Some(run) = c.read().query.clone() else { return Err(fail("query is not available here")) };
            let samples = run(&q).map_err(fail)?;
            Ok(Value::List(samples.iter().map(sample_value).collect::<Vec<_>>().into()))
        }),
    );
    add(
        "first",
        Arc::new(|args: &[Value]| match args.first() {
            Some(Value::List(l)) if !l.is_empty() => Ok(l[0].clone()),
            _ => Err(fail("first() called on vector with no elements")),
        }),
    );
    add(
        "label",
        Arc::new(|args: &[Value]| {
            let name = text_arg(args, 0);
            let v = args.get(1).and_then(|s| sample_field(s, "Labels")).and_then(|l| sample_field(l, &name));
            Ok(v.cloned().unwrap_or_else(|| string("")))
        }),
    );
    add(
        "value",
        Arc::new(|args: &[Value]| {
            Ok(args.first().and_then(|s| sample_field(s, "Value")).cloned().unwrap_or(Value::Nil))
        }),
    );
    add(
        "strvalue",
        Arc::new(|args: &[Value]| {
            let v = args.first().and_then(|s| sample_field(s, "Labels")).and_then(|l| sample_field(l, "__value__"));
            Ok(v.cloned().unwrap_or_else(|| string("")))
        }),
    );
    add(
        "args",
        Arc::new(|args: &[Value]| {
            let m: BTreeMap<Arc<str>, Value> =
                args.iter().enumerate().map(|(i, a)| (Arc::from(format!("arg{i}").as_str()), a.clone())).collect();
            Ok(Value::Map(Arc::new(m)))
        }),
    );
    add(
        "reReplaceAll",
        Arc::new(|args: &[Value]| {
            let re = crate::model::compile_go_regex_unanchored(&text_arg(args, 0)).map_err(|e| fail(e.to_string()))?;
            // Go's `$1` / `${name}` expansion is the regex crate's too.
            Ok(string(re.replace_all(&text_arg(args, 2), text_arg(args, 1).as_str())))
        }),
    );
    add(
        "match",
        Arc::new(|args: &[Value]| {
            let re = crate::model::compile_go_regex_unanchored(&text_arg(args, 0)).map_err(|e| fail(e.to_string()))?;
            Ok(Value::Bool(re.is_match(&text_arg(args, 1))))
        }),
    );
    add("safeHtml", Arc::new(|args: &[Value]| Ok(string(text_arg(args, 0)))));
    add("toUpper", Arc::new(|args: &[Value]| Ok(string(text_arg(args, 0).to_uppercase()))));
    add("toLower", Arc::new(|args: &[Value]| Ok(string(text_arg(args, 0).to_lowercase()))));
    add("title", Arc::new(|args: &[Value]| Ok(string(title(&text_arg(args, 0))))));
    add(
        "graphLink",
        Arc::new(|args: &[Value]| Ok(string(format!("/graph?g0.expr={}&g0.tab=0", query_escape(&text_arg(args, 0)))))),
    );
    add("tableLink", Arc::new(|args: &[Value]| Ok(string(table_link(&text_arg(args, 0))))));
    add(
        "sortByLabel",
        Arc::new(|args: &[Value]| {
            let name = text_arg(args, 0);
            let Some(Value::List(l)) = args.get(1) else { return Ok(args.get(1).cloned().unwrap_or(Value::Nil)) };
            let mut v: Vec<Value> = l.to_vec();
            let key = |s: &Value| {
                sample_field(s, "Labels")
                    .and_then(|m| sample_field(m, &name))
                    .map(|x| x.to_string())
                    .unwrap_or_default()
            };
            v.sort_by_key(key);
            Ok(Value::List(v.into()))
        }),
    );
    add("stripPort", Arc::new(|args: &[Value]| Ok(string(strip_port(&text_arg(args, 0))))));
    add("stripDomain", Arc::new(|args: &[Value]| Ok(string(strip_domain(&text_arg(args, 0))))));
    add("humanize", Arc::new(|args: &[Value]| Ok(string(humanize(float_arg(args, 0)?)))));
    add("humanize1024", Arc::new(|args: &[Value]| Ok(string(humanize_1024(float_arg(args, 0)?)))));
    add("humanizeDuration", Arc::new(|args: &[Value]| Ok(string(humanize_duration(float_arg(args, 0)?)))));
    add(
        "humanizePercentage",
        Arc::new(|args: &[Value]| Ok(string(format!("{}%", go_format_g(float_arg(args, 0)? * 100.0, 4))))),
    );
    add(
        "humanizeTimestamp",
        Arc::new(|args: &[Value]| {
            let v = float_arg(args, 0)?;
            if v.is_nan() || v.is_infinite() {
                return Ok(string(go_format_g(v, 4)));
            }
            Ok(string(time_string(v)?))
        }),
    );
    add(
        "toTime",
        Arc::new(|args: &[Value]| {
            let v = float_arg(args, 0)?;
            if v.is_nan() || v.is_infinite() {
                return Err(fail("value is NaN or Inf"));
            }
            Ok(string(time_string(v)?))
        }),
    );
    add(
        "toDuration",
        Arc::new(|args: &[Value]| {
            let v = float_arg(args, 0)?;
            check_time(v)?;
            let d = std::time::Duration::try_from_secs_f64(v.max(0.0))
                .map_err(|_| fail(format!("{v} overflows a duration")))?;
            Ok(string(crate::config::PromDuration(d).to_string()))
        }),
    );
    let c = cell.clone();
    add("now", Arc::new(move |_: &[Value]| Ok(Value::Float(c.read().time_ms as f64 / 1000.0))));
    let c = cell.clone();
    add("externalURL", Arc::new(move |_: &[Value]| Ok(string(&c.read().external_url))));
    let c = cell.clone();
    add("pathPrefix", Arc::new(move |_: &[Value]| Ok(string(url_path(&c.read().external_url)))));
    add(
        "parseDuration",
        Arc::new(|args: &[Value]| {
            let d = crate::config::PromDuration::parse(&text_arg(args, 0)).map_err(|e| fail(e.to_string()))?;
            Ok(Value::Float(d.0.as_secs_f64()))
        }),
    );
    add("urlQueryEscape", Arc::new(|args: &[Value]| Ok(string(query_escape(&text_arg(args, 0))))));
    f
}

/// `golang.org/x/text/cases.Title` with `NoLower`: the first letter of each word upper-cased.
pub fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !(c.is_alphanumeric() || c == '\'');
    }
    out
}

/// Prometheus's `strutil.TableLinkForExpression`.
pub fn table_link(expr: &str) -> String {
    format!("/graph?g0.expr={}&g0.tab=1", query_escape(expr))
}

fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return after.strip_prefix(':').map(|p| (host, p));
    }
    let (host, port) = s.rsplit_once(':')?;
    if host.contains(':') {
        return None;
    }
    Some((host, port))
}

fn strip_port(s: &str) -> String {
    split_host_port(s).map(|(h, _)| h.to_string()).unwrap_or_else(|| s.to_string())
}

fn strip_domain(s: &str) -> String {
    let (host, port) = split_host_port(s).unwrap_or((s, ""));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return s.to_string();
    }
    let short = host.split('.').next().unwrap_or(host);
    if port.is_empty() { short.to_string() } else { format!("{short}:{port}") }
}

fn url_path(url: &str) -> String {
    let after_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    match after_scheme.find('/') {
        Some(i) => after_scheme[i..].to_string(),
        None => String::new(),
    }
}

fn data_value(data: &TemplateData<'_>) -> Value {
    let mut m = BTreeMap::new();
    m.insert(Arc::from("Labels"), map_of(data.labels));
    m.insert(Arc::from("ExternalLabels"), map_of(data.external_labels));
    m.insert(Arc::from("ExternalURL"), string(data.external_url));
    m.insert(Arc::from("Value"), Value::Float(data.value));
    Value::Map(Arc::new(m))
}

fn parse(name: &str, text: &str, cell: &EvalCell) -> Result<Template, TemplateError> {
    Template::new(name)
        .missing_key(gotmpl::MissingKey::ZeroValue)
        .funcs(funcs(cell))
        .parse(&format!("{PREAMBLE}{text}"))
}

/// Checks that `text` parses as a template (rule validation).
pub fn check(text: &str) -> Result<(), String> {
    let labels = Labels::empty();
    let data = TemplateData {
        labels: &labels,
        external_labels: &labels,
        external_url: "",
        value: 0.0,
        time_ms: 0,
        query: None,
    };
    let t = parse("__alert", text, &EvalCell::default()).map_err(|e| e.to_string())?;
    // Go rejects an unknown function when parsing; this engine finds it when running, so
    // run once on empty data and keep only that kind of error (others depend on the data).
    match t.execute_to_string(&data_value(&data)) {
        Err(e @ TemplateError::UndefinedFunction(_)) => Err(e.to_string()),
        _ => Ok(()),
    }
}

/// A template parsed once per rule evaluation and run for each of its samples (the
/// functions depend on the evaluation, not on the sample).
pub struct Compiled {
    text: String,
    parsed: Option<Result<Template, String>>,
}

impl Compiled {
    /// Parses `text`; its functions read the evaluation in `cell` when they run.
    pub fn new(name: &str, text: &str, cell: &EvalCell) -> Self {
        let parsed = text.contains("{{").then(|| parse(name, text, cell).map_err(|e| e.to_string()));
        Compiled { text: text.to_string(), parsed }
    }

    /// Runs the template on one sample's data; an error is returned as text for the
    /// caller to put in its place.
    pub fn render(&self, data: &TemplateData<'_>) -> Result<String, String> {
        let t = match &self.parsed {
            None => return Ok(self.text.clone()),
            Some(Err(e)) => return Err(e.clone()),
            Some(Ok(t)) => t,
        };
        let out = t.execute_to_string(&data_value(data)).map_err(|e| e.to_string())?;
        // A missing map key prints as "<no value>" in this engine; Prometheus's
        // missingkey=zero prints the empty string for its string maps.
        Ok(if self.text.contains("<no value>") { out } else { out.replace("<no value>", "") })
    }
}

/// Expands `text` once; an error is returned as text for the caller to put in its place.
pub fn expand(name: &str, text: &str, data: &TemplateData<'_>) -> Result<String, String> {
    let cell = EvalCell::new(parking_lot::RwLock::new(Evaluation {
        time_ms: data.time_ms,
        query: data.query.clone(),
        external_url: data.external_url.to_string(),
    }));
    Compiled::new(name, text, &cell).render(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_with(text: &str, labels: &[(&str, &str)], value: f64) -> String {
        let labels = Labels::from_pairs(labels.iter().copied());
        let ext = Labels::from_pairs([("cluster", "demo")]);
        let data = TemplateData {
            labels: &labels,
            external_labels: &ext,
            external_url: "http://prom.example:9090/prefix",
            value,
            time_ms: 1_500,
            query: None,
        };
        expand("__alert_test", text, &data).unwrap_or_else(|e| format!("<error expanding template: {e}>"))
    }

    #[test]
    fn go_g_formatting() {
        assert_eq!(go_format_g(1234567.0, 4), "1.235e+06");
        assert_eq!(go_format_g(1.0, 4), "1");
        assert_eq!(go_format_g(0.000012345, 4), "1.234e-05");
        assert_eq!(go_format_g(123.456, 4), "123.5");
        assert_eq!(go_format_g(25.6, 4), "25.6");
        assert_eq!(go_format_g(1000.0, 4), "1000");
        assert_eq!(go_format_g(10000.0, 4), "1e+04");
    }

    #[test]
    fn humanizers_match_prometheus() {
        // Observed on Prometheus 2.42 (alerting-semantics.md §11).
        assert_eq!(expand_with("{{ 1234567.0 | humanize }}", &[], 0.0), "1.235M");
        assert_eq!(expand_with("{{ 0.256 | humanizePercentage }}", &[], 0.0), "25.6%");
        assert_eq!(expand_with("{{ 3725 | humanizeDuration }}", &[], 0.0), "1h 2m 5s");
        assert_eq!(expand_with("{{ 0.0012 | humanize }}", &[], 0.0), "1.2m");
        assert_eq!(expand_with("{{ 2048 | humanize1024 }}", &[], 0.0), "2ki");
        assert_eq!(expand_with("{{ 0.5 | humanizeDuration }}", &[], 0.0), "500ms");
        assert_eq!(expand_with("{{ 1.5 | humanizeTimestamp }}", &[], 0.0), "1970-01-01 00:00:01.5 +0000 UTC");
        assert_eq!(expand_with("{{ \"1e3\" | humanize }}", &[], 0.0), "1k");
    }

    #[test]
    fn variables_and_string_functions() {
        let out = expand_with(
            "{{ $labels.job | toUpper }} on {{ $labels.instance | stripPort }} ({{ $externalLabels.cluster }}) = {{ $value }}{{ $labels.missing }}",
            &[("job", "api"), ("instance", "host-1.example:9100")],
            0.5,
        );
        assert_eq!(out, "API on host-1.example (demo) = 0.5");
        assert_eq!(expand_with("{{ \"host-1.example:9100\" | stripDomain }}", &[], 0.0), "host-1:9100");
        assert_eq!(expand_with("{{ reReplaceAll \"(a+)\" \"<$1>\" \"xaay\" }}", &[], 0.0), "x<aa>y");
        assert_eq!(expand_with("{{ if match \"^a\" \"abc\" }}yes{{ end }}", &[], 0.0), "yes");
        assert_eq!(expand_with("{{ title \"hello wide world\" }}", &[], 0.0), "Hello Wide World");
        assert_eq!(
            expand_with("{{ pathPrefix }} {{ externalURL }}", &[], 0.0),
            "/prefix http://prom.example:9090/prefix"
        );
        assert_eq!(expand_with("{{ \"1m30s\" | parseDuration }}", &[], 0.0), "90");
        assert_eq!(expand_with("{{ printf \"%.2f\" $value }}", &[], 2.0 / 3.0), "0.67");
        assert_eq!(expand_with("{{ with args 1 \"x\" }}{{ .arg1 }}{{ end }}", &[], 0.0), "x");
    }

    #[test]
    fn errors_are_returned_not_panics() {
        assert!(expand_with("{{ first (query \"up\") }}", &[], 0.0).starts_with("<error expanding template:"));
        assert!(check("{{ unclosed").is_err());
        assert!(check("{{ nosuchfunc 1 }}").is_err());
        assert!(check("{{ $labels.job }} {{ humanize $value }}").is_ok());
        for t in ["{{ $value | toDuration }}", "{{ $value | humanizeTimestamp }}", "{{ $value | toTime }}"] {
            for v in [f64::INFINITY, 1e300, -1e300] {
                let out = expand_with(t, &[], v);
                // Prometheus prints NaN and infinities as numbers in humanizeTimestamp.
                let expected_inf = t.contains("humanizeTimestamp") && v.is_infinite();
                assert!(expected_inf == (out == "+Inf"), "{t} {v}: {out}");
                assert!(expected_inf || out.starts_with("<error expanding template:"), "{t} {v}: {out}");
            }
        }
    }

    #[test]
    fn query_function_reads_samples() {
        let labels = Labels::empty();
        let query: QueryFn = Arc::new(|q: &str| {
            assert_eq!(q, "up");
            Ok(vec![Sample { labels: Labels::from_pairs([("instance", "a")]), v: 3.0 }])
        });
        let data = TemplateData {
            labels: &labels,
            external_labels: &labels,
            external_url: "",
            value: 0.0,
            time_ms: 0,
            query: Some(query),
        };
        let out = expand(
            "t",
            "{{ with query \"up\" }}{{ . | first | value }} {{ . | first | label \"instance\" }}{{ end }}",
            &data,
        );
        assert_eq!(out.unwrap(), "3 a");
    }
}
