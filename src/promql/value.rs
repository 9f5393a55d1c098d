//! Values an expression evaluates to.

use crate::model::Labels;
use crate::tsdb::Point;

/// One element of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub v: f64,
}

/// One series of a range vector or of a range-query result.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeSeries {
    pub labels: Labels,
    pub points: Vec<Point>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar(f64),
    String(String),
    Vector(Vec<Sample>),
    Matrix(Vec<RangeSeries>),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::String(_) => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// Formats a float the way Prometheus does in API responses and labels (Go's
/// `strconv.FormatFloat(v, 'f', -1, 64)`): shortest round-trip digits, no exponent,
/// `NaN`, `+Inf`, `-Inf`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else if v != 0.0 && (v.abs() < 1e-6 || v.abs() >= 1e21) {
        // As Go's strconv.FormatFloat(v, 'e', -1, 64), which Prometheus's JSON uses for these
        // magnitudes: shortest mantissa, exponent signed and at least two digits.
        format_exponent(v, false)
    } else {
        // Rust's Display for f64 is the shortest round-trip form without an exponent.
        format!("{v}")
    }
}

/// Go's `strconv.FormatFloat(v, 'e' or 'E', -1, 64)` for finite `v`: shortest mantissa,
/// exponent signed and at least two digits (`1.5e+03`, `2E-01`). NaN and infinities print
/// as Prometheus prints them.
pub fn format_exponent(v: f64, upper: bool) -> String {
    if !v.is_finite() {
        return format_value(v);
    }
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').expect("{:e} has an exponent");
    let (sign, digits) = exp.strip_prefix('-').map_or(("+", exp), |d| ("-", d));
    let e = if upper { 'E' } else { 'e' };
    format!("{mantissa}{e}{sign}{digits:0>2}")
}

#[cfg(test)]
mod format_tests {
    use super::format_value;

    #[test]
    fn formats_like_prometheus_json() {
        assert_eq!(format_value(6.49e-7), "6.49e-07");
        assert_eq!(format_value(-1e-7), "-1e-07");
        assert_eq!(format_value(0.000001), "0.000001");
        assert_eq!(format_value(1e21), "1e+21");
        assert_eq!(format_value(1.5e300), "1.5e+300");
        assert_eq!(format_value(123456789012.5), "123456789012.5");
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(-0.0), "-0");
        assert_eq!(format_value(f64::NAN), "NaN");
    }
}
