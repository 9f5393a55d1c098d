//! The date functions (`minute`, `hour`, `day_of_week`, … `year`): parts of a Unix time in
//! seconds, in UTC, as Prometheus computes them from `time.Unix(int64(v), 0).UTC()`.

use crate::model::civil::{civil_from_days, days_from_civil};

/// The named part of `secs`; `None` for a name that is not a date function.
pub fn part(name: &str, secs: f64) -> Option<f64> {
    let s = secs as i64; // truncates toward zero, as Go's int64(v)
    let days = s.div_euclid(86_400);
    let in_day = s.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    Some(match name {
        "minute" => (in_day / 60 % 60) as f64,
        "hour" => (in_day / 3600) as f64,
        "day_of_month" => d as f64,
        // 1970-01-01 was a Thursday; Sunday is 0.
        "day_of_week" => (days + 4).rem_euclid(7) as f64,
        "day_of_year" => (days - days_from_civil(y, 1, 1) + 1) as f64,
        "days_in_month" => match m {
            2 if leap => 29.0,
            2 => 28.0,
            4 | 6 | 9 | 11 => 30.0,
            _ => 31.0,
        },
        "month" => m as f64,
        "year" => y as f64,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::part;

    #[test]
    fn parts_of_a_time() {
        // 2024-02-29T13:45:30Z, a Thursday, day 60 of a leap year.
        let t = 1_709_214_330.0;
        let got: Vec<f64> =
            ["minute", "hour", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "month", "year"]
                .iter()
                .map(|n| part(n, t).unwrap())
                .collect();
        assert_eq!(got, vec![45.0, 13.0, 29.0, 4.0, 60.0, 29.0, 2.0, 2024.0]);
        assert_eq!(part("year", -1.0), Some(1969.0));
        assert_eq!(part("nope", 0.0), None);
    }
}
