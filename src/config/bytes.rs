//! Byte sizes as Prometheus writes them (`--storage.tsdb.retention.size`, `body_size_limit`):
//! an integer and a unit among B, KB, MB, GB, TB, PB, EB (or KiB, MiB, …), each a power of
//! 1024, case-insensitive; a bare number is bytes.

/// Parses `512MB`, `10GB`, `0`; returns the size in bytes.
pub fn parse_byte_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = s.split_at(digits);
    let n: u64 =
        num.parse().map_err(|_| format!("invalid byte size {s:?}: expected a number then a unit such as 512MB"))?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "KB" | "KIB" => 10,
        "MB" | "MIB" => 20,
        "GB" | "GIB" => 30,
        "TB" | "TIB" => 40,
        "PB" | "PIB" => 50,
        "EB" | "EIB" => 60,
        _ => return Err(format!("invalid byte size {s:?}: unit must be one of B, KB, MB, GB, TB, PB, EB")),
    };
    n.checked_mul(1u64 << shift).ok_or_else(|| format!("byte size {s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_byte_size;

    #[test]
    fn units_are_powers_of_1024() {
        assert_eq!(parse_byte_size("0"), Ok(0));
        assert_eq!(parse_byte_size("512MB"), Ok(512 << 20));
        assert_eq!(parse_byte_size("3B"), Ok(3));
        assert_eq!(parse_byte_size("1EB"), Ok(1 << 60));
        assert!(parse_byte_size("16EB").is_err());
        assert_eq!(parse_byte_size("10"), Ok(10));
        assert_eq!(parse_byte_size("2KiB"), Ok(2048));
        assert_eq!(parse_byte_size("5gb"), Ok(5 << 30));
        assert!(parse_byte_size("1.5GB").is_err());
        assert!(parse_byte_size("GB").is_err());
        assert!(parse_byte_size("5 apples").is_err());
    }
}
