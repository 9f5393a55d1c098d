//! Regular expressions with Go RE2 semantics as Prometheus uses them: fully anchored,
//! `.` matching newlines (3.x), and the ASCII-only `\d \w \s` classes of Go.

use regex::Regex;

/// Rewrites Go's ASCII-only Perl classes into explicit ASCII classes (Rust's are Unicode).
fn asciify(p: &str) -> String {
    let mut out = String::with_capacity(p.len() + 16);
    let mut chars = p.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n @ ('d' | 'D' | 'w' | 'W' | 's' | 'S')) => {
                    let body = match n.to_ascii_lowercase() {
                        'd' => "0-9",
                        'w' => "0-9A-Za-z_",
                        _ => "\\t\\n\\f\\r ",
                    };
                    let neg = n.is_ascii_uppercase();
                    match (in_class, neg) {
                        (true, false) => out.push_str(body),
                        (true, true) => out.push_str(&format!("[^{body}]")),
                        (false, false) => out.push_str(&format!("[{body}]")),
                        (false, true) => out.push_str(&format!("[^{body}]")),
                    }
                }
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
            continue;
        }
        if c == '[' && !in_class {
            in_class = true;
            out.push(c);
            if chars.peek() == Some(&'^') {
                out.push(chars.next().unwrap_or('^'));
            }
            if chars.peek() == Some(&']') {
                out.push_str("\\]");
                chars.next();
            }
            continue;
        }
        if c == ']' && in_class {
            in_class = false;
        }
        out.push(c);
    }
    out
}

/// Compiles `pattern` unanchored with Go's ASCII classes (templates' `match`, `reReplaceAll`).
pub fn compile_go_regex_unanchored(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&asciify(pattern))
}

/// Compiles `pattern` as `^(?s:pattern)$` with Go's ASCII classes.
pub fn compile_go_regex(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?s:{})$", asciify(pattern)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchored_dotall_ascii() {
        let r = compile_go_regex("a").unwrap();
        assert!(r.is_match("a") && !r.is_match("ba"));
        assert!(compile_go_regex("a.b").unwrap().is_match("a\nb"));
        let d = compile_go_regex(r"\d+").unwrap();
        assert!(d.is_match("123") && !d.is_match("٣"));
        assert!(compile_go_regex(r"[\d_]+").unwrap().is_match("1_2"));
        assert!(compile_go_regex(r"\W").unwrap().is_match("é"));
        assert!(compile_go_regex("").unwrap().is_match(""));
    }
}
