//! Alertmanager's `time_intervals`: named calendar and clock windows that routes reference by name,
//! through `mute_time_intervals` (no notifications while inside any of them) and
//! `active_time_intervals` (notifications only while inside one of them). They are evaluated when a
//! group's notifications are flushed, not when alerts arrive.
//!
//! Parsing and validation follow Alertmanager's `timeinterval` package, error messages included, and
//! serialization prints what Alertmanager prints (weekdays by name; days of month, months and years as
//! numbers; `begin:end` only when the ends differ) so amtool can re-read the effective config.

use std::fmt;
use std::marker::PhantomData;
use std::num::IntErrorKind;
use std::str::FromStr;

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

const WEEKDAYS: [&str; 7] = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// An entry of the top-level `time_intervals` list: a name routes refer to, and specs ORed together.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawNamedTimeInterval")]
pub struct NamedTimeInterval {
    pub name: String,
    pub time_intervals: Vec<TimeInterval>,
}

impl NamedTimeInterval {
    /// Whether any spec contains the instant. With no specs this is false, as in Alertmanager.
    pub fn contains(&self, unix_ms: i64) -> bool {
        self.time_intervals.iter().any(|spec| spec.contains(unix_ms))
    }
}

// Unknown keys are rejected here: with `try_from`, attributes on the public type don't apply.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNamedTimeInterval {
    #[serde(default)]
    name: String,
    #[serde(default, deserialize_with = "nullable_vec")]
    time_intervals: Vec<TimeInterval>,
}

impl TryFrom<RawNamedTimeInterval> for NamedTimeInterval {
    type Error = String;

    fn try_from(raw: RawNamedTimeInterval) -> Result<Self, String> {
        if raw.name.is_empty() {
            return Err("missing name in time interval".to_string());
        }
        Ok(NamedTimeInterval { name: raw.name, time_intervals: raw.time_intervals })
    }
}

/// One spec: its fields are ANDed, the elements of one field ORed, and an empty field matches
/// everything. Calendar fields and clock times are read in `location` (UTC when absent).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeInterval {
    #[serde(default, deserialize_with = "nullable_vec", skip_serializing_if = "Vec::is_empty")]
    pub times: Vec<TimeRange>,
    #[serde(default, deserialize_with = "nullable_vec", skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<WeekdayRange>,
    #[serde(default, deserialize_with = "nullable_vec", skip_serializing_if = "Vec::is_empty")]
    pub days_of_month: Vec<DayOfMonthRange>,
    #[serde(default, deserialize_with = "nullable_vec", skip_serializing_if = "Vec::is_empty")]
    pub months: Vec<MonthRange>,
    #[serde(default, deserialize_with = "nullable_vec", skip_serializing_if = "Vec::is_empty")]
    pub years: Vec<YearRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

impl TimeInterval {
    /// Whether the instant (Unix milliseconds) falls inside this spec. Clock times have minute
    /// granularity. An instant outside jiff's supported range (±9999 years) is never contained.
    pub fn contains(&self, unix_ms: i64) -> bool {
        let Ok(instant) = Timestamp::from_millisecond(unix_ms) else {
            return false;
        };
        let tz = self.location.as_ref().map_or(TimeZone::UTC, |location| location.tz.clone());
        self.contains_zoned(&instant.to_zoned(tz))
    }

    fn contains_zoned(&self, at: &Zoned) -> bool {
        let minute = minute_of_day(at);
        let weekday = at.weekday().to_sunday_zero_offset();
        any_or_empty(&self.times, |range| range.contains_minute(minute))
            && any_or_empty(&self.weekdays, |range| range.contains_weekday(weekday))
            && any_or_empty(&self.days_of_month, |range| range.contains_day(at.day(), at.days_in_month()))
            && any_or_empty(&self.months, |range| range.contains_month(at.month()))
            && any_or_empty(&self.years, |range| range.contains_year(at.year()))
    }
}

fn any_or_empty<T>(specs: &[T], matches: impl Fn(&T) -> bool) -> bool {
    specs.is_empty() || specs.iter().any(matches)
}

fn minute_of_day(at: &Zoned) -> u16 {
    u16::from(at.hour().unsigned_abs()) * 60 + u16::from(at.minute().unsigned_abs())
}

/// `{start_time: "HH:MM", end_time: "HH:MM"}` as minutes since midnight, start inclusive and end
/// exclusive; `24:00` is accepted so a range can run to the end of the day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawTimeRange", into = "RawTimeRange")]
pub struct TimeRange {
    pub start_minute: u16,
    pub end_minute: u16,
}

impl TimeRange {
    fn contains_minute(&self, minute: u16) -> bool {
        (self.start_minute..self.end_minute).contains(&minute)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeRange {
    #[serde(default)]
    start_time: Option<String>,
    #[serde(default)]
    end_time: Option<String>,
}

impl TryFrom<RawTimeRange> for TimeRange {
    type Error = String;

    fn try_from(raw: RawTimeRange) -> Result<Self, String> {
        let present = |text: Option<String>| text.filter(|text| !text.is_empty());
        let (Some(start), Some(end)) = (present(raw.start_time), present(raw.end_time)) else {
            return Err("both start and end times must be provided".to_string());
        };
        let start_minute = parse_clock(&start)?;
        let end_minute = parse_clock(&end)?;
        if start_minute >= end_minute {
            return Err("start time cannot be equal or greater than end time".to_string());
        }
        Ok(TimeRange { start_minute, end_minute })
    }
}

impl From<TimeRange> for RawTimeRange {
    fn from(range: TimeRange) -> Self {
        RawTimeRange { start_time: Some(clock(range.start_minute)), end_time: Some(clock(range.end_minute)) }
    }
}

/// Alertmanager accepts exactly `00:00`..`23:59` (two-digit hours) plus `24:00`.
fn parse_clock(text: &str) -> Result<u16, String> {
    if text == "24:00" {
        return Ok(24 * 60);
    }
    let bytes = text.as_bytes();
    let parsed = match bytes {
        [h1, h2, b':', m1, m2] => two_digits(*h1, *h2).zip(two_digits(*m1, *m2)),
        _ => None,
    };
    match parsed {
        Some((hour, minute)) if hour < 24 && minute < 60 => Ok(hour * 60 + minute),
        _ => Err(format!("couldn't parse timestamp {text}, invalid format")),
    }
}

fn two_digits(high: u8, low: u8) -> Option<u16> {
    if high.is_ascii_digit() && low.is_ascii_digit() {
        Some(u16::from(high - b'0') * 10 + u16::from(low - b'0'))
    } else {
        None
    }
}

fn clock(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// Weekdays `begin..=end`, 0 = Sunday … 6 = Saturday. Written by name only (`monday:friday`,
/// case-insensitive); since Sunday is 0, a range cannot wrap through the weekend (`saturday:sunday`
/// is rejected, as in Alertmanager: list `saturday` and `sunday` instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WeekdayRange {
    pub begin: i8,
    pub end: i8,
}

impl WeekdayRange {
    fn contains_weekday(&self, sunday_zero: i8) -> bool {
        (self.begin..=self.end).contains(&sunday_zero)
    }
}

impl FromStr for WeekdayRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (begin, end) = parse_range(text, weekday_number)?;
        if begin > end {
            return Err("start day cannot be before end day".to_string());
        }
        // Names only map into 0..=6, so Alertmanager's out-of-range check cannot fail here.
        Ok(WeekdayRange { begin, end })
    }
}

impl fmt::Display for WeekdayRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |n: i8| usize::try_from(n).ok().and_then(|i| WEEKDAYS.get(i)).copied().unwrap_or("invalid");
        if self.begin == self.end {
            f.write_str(name(self.begin))
        } else {
            write!(f, "{}:{}", name(self.begin), name(self.end))
        }
    }
}

fn weekday_number(name: &str) -> Result<i8, String> {
    (0i8..)
        .zip(WEEKDAYS)
        .find_map(|(n, day)| (day == name).then_some(n))
        .ok_or_else(|| format!("{name} is not a valid weekday"))
}

/// Days of the month `begin..=end`, 1-based; negative values count from the month's end (-1 is the
/// last day). Both ends lie in -31..=31 without 0, and a negative start needs a negative end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DayOfMonthRange {
    pub begin: i8,
    pub end: i8,
}

impl DayOfMonthRange {
    fn contains_day(&self, day: i8, days_in_month: i8) -> bool {
        let resolve = |d: i8| if d < 0 { days_in_month + d + 1 } else { d };
        let (begin, end) = (resolve(self.begin), resolve(self.end));
        // A start past this month's end (30 in February) matches nothing instead of being clamped.
        if begin > days_in_month {
            return false;
        }
        let clamp = |d: i8| d.clamp(-days_in_month, days_in_month);
        (clamp(begin)..=clamp(end)).contains(&day)
    }
}

impl FromStr for DayOfMonthRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (begin, end) = parse_range(text, atoi)?;
        let (begin, end) = (day_of_month(begin)?, day_of_month(end)?);
        if begin < 0 && end > 0 {
            return Err("end day must be negative if start day is negative".to_string());
        }
        // Alertmanager orders the ends as if every month had 28 days.
        let in_28_days = |d: i8| if d < 0 { 28 + d } else { d };
        if in_28_days(begin) > in_28_days(end) {
            return Err(format!("end day {end} is always before start day {begin}"));
        }
        Ok(DayOfMonthRange { begin, end })
    }
}

impl fmt::Display for DayOfMonthRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_numeric_range(f, self.begin, self.end)
    }
}

fn day_of_month(n: i64) -> Result<i8, String> {
    match i8::try_from(n) {
        Ok(day) if day != 0 && (-31..=31).contains(&day) => Ok(day),
        _ => Err(format!("{n} is not a valid day of the month: out of range")),
    }
}

/// Months `begin..=end`, 1 = January, written by (case-insensitive) name or number. Like
/// Alertmanager, numbers are not range-checked: `13` parses and never matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MonthRange {
    pub begin: i64,
    pub end: i64,
}

impl MonthRange {
    fn contains_month(&self, month: i8) -> bool {
        (self.begin..=self.end).contains(&i64::from(month))
    }
}

impl FromStr for MonthRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (begin, end) = parse_range(text, month_number)?;
        if begin > end {
            return Err(format!("end month {} is before start month {}", month_name(end), month_name(begin)));
        }
        Ok(MonthRange { begin, end })
    }
}

impl fmt::Display for MonthRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_numeric_range(f, self.begin, self.end)
    }
}

fn month_number(text: &str) -> Result<i64, String> {
    match (1i64..).zip(MONTHS).find_map(|(n, month)| (month == text).then_some(n)) {
        Some(n) => Ok(n),
        None => text.parse::<i64>().map_err(|_| format!("{text} is not a valid month")),
    }
}

/// Alertmanager names out-of-range months with an empty string in its messages.
fn month_name(n: i64) -> &'static str {
    let index = usize::try_from(n).ok().and_then(|n| n.checked_sub(1));
    index.and_then(|i| MONTHS.get(i)).copied().unwrap_or("")
}

/// Years `begin..=end`, e.g. `2026` or `2020:2022`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct YearRange {
    pub begin: i64,
    pub end: i64,
}

impl YearRange {
    fn contains_year(&self, year: i16) -> bool {
        (self.begin..=self.end).contains(&i64::from(year))
    }
}

impl FromStr for YearRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (begin, end) = parse_range(text, atoi)?;
        if begin > end {
            return Err(format!("end year {end} is before start year {begin}"));
        }
        Ok(YearRange { begin, end })
    }
}

impl fmt::Display for YearRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_numeric_range(f, self.begin, self.end)
    }
}

/// Splits `begin:end` (or a single member, meaning `member:member`) after lowercasing, as
/// Alertmanager does for every range kind.
fn parse_range<T: Copy>(text: &str, member: fn(&str) -> Result<T, String>) -> Result<(T, T), String> {
    let lower = text.to_lowercase();
    match lower.split_once(':') {
        None => {
            let only = member(&lower)?;
            Ok((only, only))
        }
        Some((begin, end)) if !end.contains(':') => Ok((member(begin)?, member(end)?)),
        Some(_) => Err(format!("couldn't parse range {lower}, invalid format")),
    }
}

/// Go's `strconv.Atoi`, with its error text.
fn atoi(text: &str) -> Result<i64, String> {
    text.parse::<i64>().map_err(|e| {
        let why = match e.kind() {
            IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => "value out of range",
            _ => "invalid syntax",
        };
        format!("strconv.Atoi: parsing {text:?}: {why}")
    })
}

fn fmt_numeric_range<T: fmt::Display + PartialEq>(f: &mut fmt::Formatter<'_>, begin: T, end: T) -> fmt::Result {
    if begin == end { write!(f, "{begin}") } else { write!(f, "{begin}:{end}") }
}

/// An IANA time zone such as `Europe/Paris`; `UTC` (or empty) is UTC and `Local` the system zone.
/// The name is kept as written so serialization prints it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    name: String,
    tz: TimeZone,
}

impl Location {
    pub fn utc() -> Self {
        Location { name: "UTC".to_string(), tz: TimeZone::UTC }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }
}

impl Default for Location {
    fn default() -> Self {
        Location::utc()
    }
}

impl FromStr for Location {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "" | "UTC" => Ok(Location::utc()),
            "Local" => Ok(Location { name: name.to_string(), tz: TimeZone::system() }),
            _ => TimeZone::get(name)
                .map(|tz| Location { name: name.to_string(), tz })
                .map_err(|_| format!("unknown time zone {name}")),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Accepts a string scalar (or, from formats that type their scalars, a number) and parses it
/// with the target's `FromStr`, whose message becomes the deserialization error.
struct FromStrVisitor<T> {
    expecting: &'static str,
    target: PhantomData<fn() -> T>,
}

impl<'de, T: FromStr<Err = String>> Visitor<'de> for FromStrVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.parse::<T>().map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }
}

macro_rules! serde_as_string {
    ($ty:ty, $expecting:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str(FromStrVisitor::<$ty> { expecting: $expecting, target: PhantomData })
            }
        }
    };
}

serde_as_string!(WeekdayRange, "a weekday or weekday range such as monday:friday");
serde_as_string!(DayOfMonthRange, "a day of the month or a range such as 1:5 or -3:-1");
serde_as_string!(MonthRange, "a month or a range of months such as january:march");
serde_as_string!(YearRange, "a year or a range of years such as 2020:2022");
serde_as_string!(Location, "a time zone name such as Europe/Paris");

/// Alertmanager treats an explicit null like an absent list.
fn nullable_vec<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        rfc3339.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn interval(yaml: &str) -> TimeInterval {
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
    }

    fn parse_error(yaml: &str) -> String {
        let err = serde_saphyr::from_str::<Vec<TimeInterval>>(yaml).unwrap_err();
        err.without_snippet().to_string()
    }

    fn check(spec: &TimeInterval, inside: &[&str], outside: &[&str]) {
        for at in inside {
            assert!(spec.contains(ms(at)), "{spec:?} should contain {at}");
        }
        for at in outside {
            assert!(!spec.contains(ms(at)), "{spec:?} should not contain {at}");
        }
    }

    const BUSINESS_HOURS: &str = "{weekdays: ['monday:friday'], times: [{start_time: '09:00', end_time: '17:00'}]}";

    #[test]
    fn empty_spec_matches_everything() {
        check(&TimeInterval::default(), &["2006-01-02T15:04:00Z", "2007-01-03T10:04:00Z"], &[]);
        check(&interval("{}"), &["2021-04-05T10:00:00Z"], &[]);
    }

    #[test]
    fn business_hours() {
        check(
            &interval(BUSINESS_HOURS),
            &["2020-05-04T15:04:00Z", "2020-05-05T10:04:00Z", "2020-06-09T09:04:00Z", "2020-07-08T16:59:59Z"],
            &["2020-05-03T15:04:00Z", "2020-05-04T08:59:00Z", "2020-05-05T05:00:00Z", "2020-07-08T17:00:00Z"],
        );
    }

    #[test]
    fn single_weekdays_and_sunday_zero() {
        let weekend = interval("{weekdays: ['saturday', 'Sunday']}");
        assert_eq!(weekend.weekdays, vec![WeekdayRange { begin: 6, end: 6 }, WeekdayRange { begin: 0, end: 0 }]);
        check(
            &weekend,
            &["2021-01-09T00:00:00Z", "2021-01-10T23:59:00Z"],
            &["2021-01-08T23:59:00Z", "2021-01-11T00:00:00Z"],
        );
    }

    #[test]
    fn negative_days_of_month_follow_month_length() {
        let last_three = interval("{days_of_month: ['-3:-1']}");
        check(
            &last_three,
            &[
                "2020-01-29T12:00:00Z",
                "2020-01-31T12:00:00Z",
                "2020-02-27T12:00:00Z",
                "2020-02-29T12:00:00Z",
                "2021-02-26T12:00:00Z",
                "2021-02-28T12:00:00Z",
                "2020-06-28T12:00:00Z",
                "2020-06-30T12:00:00Z",
            ],
            &[
                "2020-01-28T12:00:00Z",
                "2020-02-26T12:00:00Z",
                "2021-02-25T12:00:00Z",
                "2020-06-27T12:00:00Z",
                "2020-03-01T00:00:00Z",
            ],
        );
        check(&interval("{days_of_month: ['1:-1']}"), &["2021-02-28T12:00:00Z", "2021-03-31T12:00:00Z"], &[]);
    }

    #[test]
    fn days_of_month_are_clamped_to_the_month() {
        let june = interval("{months: ['june'], days_of_month: ['1:31']}");
        check(
            &june,
            &["2020-06-01T00:00:00Z", "2020-06-30T00:00:00Z"],
            &["2020-05-31T00:00:00Z", "2020-07-01T00:00:00Z"],
        );
        check(&interval("{days_of_month: ['-31:-1']}"), &["2021-02-01T00:00:00Z", "2021-02-28T23:59:00Z"], &[]);
        let end_of_month = interval("{days_of_month: ['29:31']}");
        check(
            &end_of_month,
            &["2020-02-29T12:00:00Z", "2021-01-29T12:00:00Z", "2021-01-31T12:00:00Z", "2021-04-30T12:00:00Z"],
            &["2021-02-28T12:00:00Z", "2021-03-01T12:00:00Z"],
        );
        // A start past the end of February is skipped, not clamped to the 28th.
        let late_feb = interval("{days_of_month: ['30:31'], years: ['2020:2023'], months: ['february']}");
        check(&late_feb, &[], &["2021-02-28T13:00:00Z", "2020-02-29T13:00:00Z"]);
    }

    #[test]
    fn month_ranges() {
        check(
            &interval("{months: ['january:march']}"),
            &["2021-01-01T00:00:00Z", "2021-02-15T12:00:00Z", "2021-03-31T23:59:00Z"],
            &["2021-04-01T00:00:00Z", "2021-12-25T12:00:00Z"],
        );
        let mixed = interval("{months: ['4:6', 'December']}");
        assert_eq!(mixed.months, vec![MonthRange { begin: 4, end: 6 }, MonthRange { begin: 12, end: 12 }]);
        check(
            &mixed,
            &["2021-05-01T00:00:00Z", "2021-12-01T00:00:00Z"],
            &["2021-07-01T00:00:00Z", "2021-11-30T23:59:00Z"],
        );
    }

    #[test]
    fn year_ranges() {
        check(
            &interval("{years: ['2020:2022']}"),
            &["2020-01-01T00:00:00Z", "2022-12-31T23:59:00Z"],
            &["2019-12-31T23:59:59Z", "2023-01-01T00:00:00Z"],
        );
    }

    #[test]
    fn always_and_never() {
        let always = interval("{times: [{start_time: '00:00', end_time: '24:00'}]}");
        assert_eq!(always.times, vec![TimeRange { start_minute: 0, end_minute: 1440 }]);
        check(&always, &["2021-04-05T00:00:00Z", "2021-04-05T23:59:59.999Z"], &[]);
        let never = interval("{years: ['1999']}");
        check(&never, &["1999-07-01T00:00:00Z"], &["2000-01-01T00:00:00Z", "2021-04-05T10:00:00Z"]);
    }

    #[test]
    fn combined_fields_are_anded() {
        let spec = interval(
            "{weekdays: ['monday:wednesday', 'saturday', 'sunday'], times: [{start_time: '13:00', end_time: '15:00'}], \
             days_of_month: ['1', '10', '20:-1'], years: ['2020:2023'], months: ['january:march']}",
        );
        check(
            &spec,
            &["2021-01-10T13:00:00Z", "2021-01-30T14:24:00Z"],
            &["2021-01-09T13:00:00Z", "2021-01-20T12:59:00Z", "2021-02-02T13:00:00Z"],
        );
        let quarter_end = interval(
            "{weekdays: ['monday:friday', 'sunday'], months: ['january:march'], days_of_month: ['-7:-1'], \
             years: ['2020:2025', '2030:2035'], times: [{start_time: '09:00', end_time: '17:00'}]}",
        );
        check(
            &quarter_end,
            &[
                "2021-01-27T09:00:00Z",
                "2021-01-28T16:59:00Z",
                "2021-01-29T13:00:00Z",
                "2025-03-31T13:00:00Z",
                "2035-01-31T13:00:00Z",
            ],
            &["2021-01-30T13:00:00Z", "2021-04-01T13:00:00Z", "2026-01-30T13:00:00Z", "2035-01-31T17:01:00Z"],
        );
    }

    #[test]
    fn location_shifts_clock_and_calendar() {
        let utc = interval(BUSINESS_HOURS);
        let new_york = interval(
            "{weekdays: ['monday:friday'], times: [{start_time: '09:00', end_time: '17:00'}], \
             location: 'America/New_York'}",
        );
        // 2021-04-05 is a Monday; New York is on EDT (UTC-4).
        check(
            &new_york,
            &["2021-04-05T13:00:00Z", "2021-04-05T20:59:00Z"],
            &["2021-04-05T12:59:00Z", "2021-04-05T21:00:00Z"],
        );
        check(&utc, &["2021-04-05T12:59:00Z"], &["2021-04-05T20:59:00Z"]);

        // Saturday 02:00 UTC is still Friday evening in New York.
        let friday_ny = interval("{weekdays: ['friday'], location: 'America/New_York'}");
        check(&friday_ny, &["2021-04-10T02:00:00Z"], &["2021-04-10T04:00:00Z"]);
        check(&interval("{weekdays: ['friday']}"), &[], &["2021-04-10T02:00:00Z"]);

        let last_day_ny = interval("{days_of_month: ['-1'], location: 'America/New_York'}");
        check(
            &last_day_ny,
            &["2021-03-31T12:00:00-04:00", "2021-04-01T03:59:00Z"],
            &["2021-03-30T12:00:00-04:00", "2021-04-01T04:00:00Z"],
        );
        check(&interval("{days_of_month: ['-1'], location: 'UTC'}"), &[], &["2021-04-01T03:59:00Z"]);
    }

    #[test]
    fn location_during_daylight_saving_time() {
        let sydney = interval(
            "{weekdays: ['monday:friday'], months: ['november'], times: [{start_time: '09:00', end_time: '17:00'}], \
             location: 'Australia/Sydney'}",
        );
        check(&sydney, &["2021-11-01T09:00:00+11:00", "2021-10-31T22:00:00Z"], &["2021-10-31T21:00:00Z"]);
    }

    #[test]
    fn named_intervals() {
        let named: NamedTimeInterval = serde_saphyr::from_str("name: empty").unwrap();
        assert!(named.time_intervals.is_empty());
        assert!(!named.contains(ms("2021-04-05T10:00:00Z")));

        let never_and_always: NamedTimeInterval = serde_saphyr::from_str(
            "{name: either, time_intervals: [{years: ['1999']}, {times: [{start_time: '00:00', end_time: '24:00'}]}]}",
        )
        .unwrap();
        assert!(never_and_always.contains(ms("2021-04-05T10:00:00Z")));

        let missing = serde_saphyr::from_str::<NamedTimeInterval>("time_intervals: []").unwrap_err();
        assert!(missing.to_string().contains("missing name in time interval"), "{missing}");
        let unknown = serde_saphyr::from_str::<NamedTimeInterval>("{name: x, time_interval: []}").unwrap_err();
        assert!(unknown.to_string().contains("unknown field"), "{unknown}");
    }

    #[test]
    fn block_yaml_with_unquoted_scalars() {
        let named: Vec<NamedTimeInterval> = serde_saphyr::from_str(
            r"
- name: business
  time_intervals:
    - weekdays:
        - Monday:Friday
      days_of_month: [1, -1]
      years: [2026]
      times:
        - start_time: 09:00
          end_time: 17:30
      location: Europe/Paris
    - months:
",
        )
        .unwrap();
        let spec = &named[0].time_intervals[0];
        assert_eq!(spec.weekdays, vec![WeekdayRange { begin: 1, end: 5 }]);
        assert_eq!(
            spec.days_of_month,
            vec![DayOfMonthRange { begin: 1, end: 1 }, DayOfMonthRange { begin: -1, end: -1 }]
        );
        assert_eq!(spec.years, vec![YearRange { begin: 2026, end: 2026 }]);
        assert_eq!(spec.times, vec![TimeRange { start_minute: 540, end_minute: 1050 }]);
        assert_eq!(spec.location.as_ref().map(Location::name), Some("Europe/Paris"));
        assert_eq!(named[0].time_intervals[1], TimeInterval::default());
    }

    #[test]
    fn serializes_to_alertmanager_form() {
        let spec = interval(
            "{weekdays: ['Monday:FRIDAY', 'sunday'], days_of_month: ['-7:-1', '1'], months: ['January:march', '12'], \
             years: ['2020:2025', '2030'], times: [{start_time: '00:00', end_time: '24:00'}, \
             {start_time: '01:35', end_time: '17:39'}], location: 'Australia/Sydney'}",
        );
        let expected = serde_json::json!({
            "times": [{"start_time": "00:00", "end_time": "24:00"}, {"start_time": "01:35", "end_time": "17:39"}],
            "weekdays": ["monday:friday", "sunday"],
            "days_of_month": ["-7:-1", "1"],
            "months": ["1:3", "12"],
            "years": ["2020:2025", "2030"],
            "location": "Australia/Sydney"
        });
        assert_eq!(serde_json::to_value(&spec).unwrap(), expected);
        assert_eq!(serde_json::to_value(TimeInterval::default()).unwrap(), serde_json::json!({}));
        let never = NamedTimeInterval { name: "never".to_string(), time_intervals: vec![] };
        assert_eq!(serde_json::to_value(&never).unwrap(), serde_json::json!({"name": "never", "time_intervals": []}));
    }

    #[test]
    fn yaml_round_trip() {
        let named: Vec<NamedTimeInterval> = serde_saphyr::from_str(
            r"
- name: business_hours
  time_intervals:
    - weekdays: ['monday:friday']
      times: [{start_time: '09:00', end_time: '17:00'}]
      location: America/New_York
    - days_of_month: ['-3:-1', '1']
      months: ['january:march', 'december']
      years: ['2020:2022']
- name: never
  time_intervals: [{years: ['1999']}]
- name: empty
  time_intervals: []
",
        )
        .unwrap();
        let yaml = serde_saphyr::to_string(&named).unwrap();
        assert!(yaml.contains("monday:friday"), "{yaml}");
        let back: Vec<NamedTimeInterval> = serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
        assert_eq!(back, named, "{yaml}");
    }

    #[test]
    fn rejects_what_alertmanager_rejects() {
        let cases = [
            ("- times: [{start_time: '01:99', end_time: '23:59'}]", "couldn't parse timestamp 01:99, invalid format"),
            ("- times: [{start_time: '00:00', end_time: '99:99'}]", "couldn't parse timestamp 99:99, invalid format"),
            ("- times: [{start_time: '12:30', end_time: '24:01'}]", "couldn't parse timestamp 24:01, invalid format"),
            ("- times: [{start_time: '9:00', end_time: '17:00'}]", "couldn't parse timestamp 9:00, invalid format"),
            (
                "- times: [{start_time: '17:31', end_time: '17:31'}]",
                "start time cannot be equal or greater than end time",
            ),
            (
                "- times: [{start_time: '24:00', end_time: '17:41'}]",
                "start time cannot be equal or greater than end time",
            ),
            ("- times: [{start_time: '14:03'}]", "both start and end times must be provided"),
            ("- weekdays: ['friday:monday']", "start day cannot be before end day"),
            ("- weekdays: ['saturday:sunday']", "start day cannot be before end day"),
            ("- weekdays: ['blurgsday:flurgsday']", "blurgsday is not a valid weekday"),
            ("- weekdays: ['1:3']", "1 is not a valid weekday"),
            ("- weekdays: ['-2:-1']", "-2 is not a valid weekday"),
            ("- weekdays: ['monday:tuesday:friday']", "couldn't parse range monday:tuesday:friday, invalid format"),
            ("- days_of_month: ['0']", "0 is not a valid day of the month: out of range"),
            ("- days_of_month: ['-50:-20']", "-50 is not a valid day of the month: out of range"),
            ("- days_of_month: ['1:50']", "50 is not a valid day of the month: out of range"),
            ("- days_of_month: ['-15:5']", "end day must be negative if start day is negative"),
            ("- days_of_month: ['10:-25']", "end day -25 is always before start day 10"),
            ("- days_of_month: ['first']", "strconv.Atoi: parsing \"first\": invalid syntax"),
            ("- months: ['martius:june']", "martius is not a valid month"),
            ("- months: ['march:junius']", "junius is not a valid month"),
            ("- months: ['december:january']", "end month january is before start month december"),
            ("- years: ['2022:2020']", "end year 2020 is before start year 2022"),
            ("- years: ['next']", "strconv.Atoi: parsing \"next\": invalid syntax"),
            ("- location: 'Mars/Olympus_Mons'", "unknown time zone Mars/Olympus_Mons"),
            ("- weekday: ['monday']", "unknown field"),
            ("- times: [{start_time: '09:00', end_time: '17:00', end: '18:00'}]", "unknown field"),
        ];
        for (yaml, want) in cases {
            let got = parse_error(yaml);
            assert!(got.contains(want), "{yaml}: got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn accepts_what_alertmanager_accepts() {
        let spec = interval("{days_of_month: ['1:-1', '5:-1'], months: ['13'], location: ''}");
        assert_eq!(spec.days_of_month[1], DayOfMonthRange { begin: 5, end: -1 });
        assert_eq!(spec.months, vec![MonthRange { begin: 13, end: 13 }]);
        assert_eq!(spec.location, Some(Location::utc()));
        check(&spec, &[], &["2021-12-15T00:00:00Z"]);
        assert_eq!(interval("{location: Local}").location.map(|l| l.to_string()), Some("Local".to_string()));
    }
}
