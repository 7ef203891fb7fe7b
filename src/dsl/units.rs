//! Quantities with units: durations, rates, sizes, percentages and ranges of them.
//!
//! The parsers here work on text (`"250ms"`, `"20/s"`, `"1.5GiB"`, `"5%..15%"`); the value
//! layer (`value.rs`) adapts KDL values and type annotations onto them. Validated quantities
//! are newtypes, so later stages never re-check units.

use std::fmt;

use serde::{Serialize, Serializer};

/// A non-negative span of time, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub u64);

/// Events per second (requests, tokens, launches).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Default)]
pub struct Rate(pub f64);

/// A number of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Bytes(pub u64);

/// A share, stored as a fraction: `60%` is `Percent(0.6)`. May exceed 1 (e.g. 150 %).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Default)]
pub struct Percent(pub f64);

/// A size that is either absolute or relative to a total (memory as bytes or % of RAM).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Amount {
    Bytes(Bytes),
    Percent(Percent),
}

/// An inclusive range `lo..hi` with `lo <= hi`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Range<T> {
    pub lo: T,
    pub hi: T,
}

/// Why a text failed to parse: the message names the problem, the help shows valid forms.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitError {
    pub message: String,
    pub help: &'static str,
}

pub const DURATION_HELP: &str = "expected a duration like 250ms or 2s (units: ns, us, ms, s, m, h)";
pub const RATE_HELP: &str = "expected a rate like 20/s (per: s, m, h)";
pub const SIZE_HELP: &str = "expected a size like 512MB or 8GiB (units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)";
pub const PERCENT_HELP: &str = "expected a percentage like 60% (or a fraction like 0.6)";
pub const RANGE_HELP: &str = "expected a range like 32..512 (inclusive, low..high)";

/// Splits `"12.5ms"` into `(12.5, "ms")`, allowing `_` digit separators and surrounding space.
fn split_number(text: &str) -> Option<(f64, &str)> {
    let t = text.trim();
    let end = t
        .char_indices()
        .find(|&(i, c)| {
            !(c.is_ascii_digit()
                || c == '_'
                || c == '.'
                || ((c == '-' || c == '+') && i == 0)
                || c == 'e' && i > 0 && t[i + 1..].starts_with(|d: char| d.is_ascii_digit() || d == '-'))
        })
        .map(|(i, _)| i)
        .unwrap_or(t.len());
    let digits: String = t[..end].chars().filter(|&c| c != '_').collect();
    if digits.is_empty() || digits.starts_with('.') && digits.len() == 1 {
        return None;
    }
    let n: f64 = digits.parse().ok()?;
    n.is_finite().then_some((n, t[end..].trim()))
}

fn err(message: String, help: &'static str) -> UnitError {
    UnitError { message, help }
}

/// Nanoseconds in one `unit`, or `None` for an unknown unit.
pub fn duration_unit(unit: &str) -> Option<f64> {
    Some(match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" | "sec" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        _ => return None,
    })
}

pub fn duration_from(n: f64, unit: &str, text: &str) -> Result<Duration, UnitError> {
    if unit.is_empty() {
        return Err(err(format!("`{text}` has no unit"), DURATION_HELP));
    }
    let scale = duration_unit(unit).ok_or_else(|| err(format!("`{unit}` is not a unit of time"), DURATION_HELP))?;
    if n < 0.0 {
        return Err(err(format!("`{text}` is negative; durations must be >= 0"), DURATION_HELP));
    }
    let ns = n * scale;
    if ns > u64::MAX as f64 / 2.0 {
        return Err(err(format!("`{text}` is too long"), DURATION_HELP));
    }
    Ok(Duration(ns.round() as u64))
}

impl Duration {
    /// Parses `250ms`, `2s`, `1.5m`, and compound forms like `1m30s`.
    pub fn parse(text: &str) -> Result<Self, UnitError> {
        let not = || err(format!("`{text}` is not a duration"), DURATION_HELP);
        let mut rest = text.trim();
        let mut total = 0u64;
        while !rest.is_empty() {
            let (n, after) = split_number(rest).ok_or_else(not)?;
            let unit_len = after.find(|c: char| !c.is_alphabetic()).unwrap_or(after.len());
            let (unit, next) = after.split_at(unit_len);
            if unit.is_empty() && !next.is_empty() {
                return Err(not());
            }
            total = total.saturating_add(duration_from(n, unit, text)?.0);
            rest = next.trim_start();
        }
        if text.trim().is_empty() {
            return Err(not());
        }
        Ok(Duration(total))
    }
    pub fn from_secs_f64(s: f64) -> Self {
        Duration((s * 1e9).round() as u64)
    }
    pub fn as_secs_f64(&self) -> f64 {
        self.0 as f64 / 1e9
    }
    pub fn as_std(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const S: u64 = 1_000_000_000;
        let ns = self.0 as f64;
        if self.0 == 0 {
            return f.write_str("0s");
        }
        if self.0 >= 60 * S && self.0 % S == 0 {
            // Whole seconds of a minute or more: compound form, e.g. 2m50s, 1h30m.
            let (h, m, s) = (self.0 / (3600 * S), self.0 / (60 * S) % 60, self.0 / S % 60);
            let mut out = String::new();
            for (v, u) in [(h, "h"), (m, "m"), (s, "s")] {
                if v > 0 {
                    out += &format!("{v}{u}");
                }
            }
            return f.write_str(&out);
        }
        let (v, u) = match self.0 {
            n if n >= S => (ns / 1e9, "s"),
            n if n >= 1_000_000 => (ns / 1e6, "ms"),
            n if n >= 1_000 => (ns / 1e3, "µs"),
            _ => (ns, "ns"),
        };
        write!(f, "{}{u}", trim_float(v))
    }
}

/// Formats with up to three decimals and no trailing zeros.
pub fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

impl Rate {
    /// Parses `20/s`, `100/m`, `5/h`; a bare number only when `bare_is_per_second`.
    pub fn parse(text: &str, bare_is_per_second: bool) -> Result<Self, UnitError> {
        let (n, rest) = split_number(text).ok_or_else(|| err(format!("`{text}` is not a rate"), RATE_HELP))?;
        if n < 0.0 {
            return Err(err(format!("`{text}` is negative; rates must be >= 0"), RATE_HELP));
        }
        if rest.is_empty() {
            return if bare_is_per_second {
                Ok(Rate(n))
            } else {
                Err(err(format!("`{text}` has no time unit"), RATE_HELP))
            };
        }
        let per = rest.strip_prefix('/').ok_or_else(|| err(format!("`{text}` is not a rate"), RATE_HELP))?.trim();
        let secs = match per {
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            other => return Err(err(format!("`/{other}` is not a time unit for a rate"), RATE_HELP)),
        };
        Ok(Rate(n / secs))
    }
    pub fn per_sec(&self) -> f64 {
        self.0
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 != 0.0 && self.0 < 0.1 {
            write!(f, "{}/m", trim_float(self.0 * 60.0))
        } else {
            write!(f, "{}/s", trim_float(self.0))
        }
    }
}

/// Bytes in one `unit` (case-sensitive, SI and IEC).
pub fn size_unit(unit: &str) -> Option<u64> {
    Some(match unit {
        "B" | "" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => return None,
    })
}

impl Bytes {
    pub fn parse(text: &str) -> Result<Self, UnitError> {
        let (n, unit) = split_number(text).ok_or_else(|| err(format!("`{text}` is not a size"), SIZE_HELP))?;
        let scale = size_unit(unit).ok_or_else(|| err(format!("`{unit}` is not a unit of size"), SIZE_HELP))?;
        if n < 0.0 {
            return Err(err(format!("`{text}` is negative; sizes must be >= 0"), SIZE_HELP));
        }
        let b = n * scale as f64;
        if b > u64::MAX as f64 / 2.0 {
            return Err(err(format!("`{text}` is too large"), SIZE_HELP));
        }
        Ok(Bytes(b.round() as u64))
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        let iec = [("TiB", 1u64 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
        let si = [("TB", 1_000_000_000_000u64), ("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1_000)];
        // Exact multiples first (IEC, then SI), then IEC with up to three exact decimals.
        let exact = iec.iter().chain(si.iter()).find(|(_, s)| b >= *s && b % s == 0);
        let decimal = iec.iter().find(|(_, s)| b >= *s && (b as u128 * 1000) % *s as u128 == 0);
        match exact.or(decimal) {
            Some((unit, scale)) => write!(f, "{}{unit}", trim_float(b as f64 / *scale as f64)),
            None => write!(f, "{b}B"),
        }
    }
}

impl Percent {
    /// Parses `60%`; a bare number is a fraction when `bare_fraction` (0.6 means 60 %).
    pub fn parse(text: &str, bare_fraction: bool) -> Result<Self, UnitError> {
        let (n, rest) = split_number(text).ok_or_else(|| err(format!("`{text}` is not a percentage"), PERCENT_HELP))?;
        if n < 0.0 {
            return Err(err(format!("`{text}` is negative"), PERCENT_HELP));
        }
        match rest {
            "%" => Ok(Percent(n / 100.0)),
            "" if bare_fraction => Ok(Percent(n)),
            "" => Err(err(format!("`{text}` has no `%`"), PERCENT_HELP)),
            _ => Err(err(format!("`{text}` is not a percentage"), PERCENT_HELP)),
        }
    }
    pub fn fraction(&self) -> f64 {
        self.0
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", trim_float(self.0 * 100.0))
    }
}

impl Amount {
    pub fn parse(text: &str) -> Result<Self, UnitError> {
        if text.trim_end().ends_with('%') {
            Percent::parse(text, false).map(Amount::Percent)
        } else {
            Bytes::parse(text).map(Amount::Bytes).map_err(|e| UnitError {
                message: e.message,
                help: "expected a size like 8GiB or a share of RAM like 60%",
            })
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Bytes(b) => b.fmt(f),
            Amount::Percent(p) => p.fmt(f),
        }
    }
}

/// Splits `"a..b"` into its two ends, or `None` if there is no `..`.
pub fn split_range(text: &str) -> Option<(&str, &str)> {
    let (a, b) = text.split_once("..")?;
    Some((a.trim(), b.trim_start_matches('=').trim()))
}

impl<T: fmt::Display> fmt::Display for Range<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.lo, self.hi)
    }
}

macro_rules! display_serialize {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}
display_serialize!(Duration, Rate, Bytes, Percent);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("250ms", Some(250_000_000)),
            ("2s", Some(2_000_000_000)),
            ("1.5m", Some(90_000_000_000)),
            ("1h", Some(3_600_000_000_000)),
            ("500us", Some(500_000)),
            ("10ns", Some(10)),
            ("1_000ms", Some(1_000_000_000)),
            (" 3 s ", Some(3_000_000_000)),
            ("250", None),
            ("ms", None),
            ("5 parsecs", None),
            ("-1s", None),
        ];
        for (text, want) in cases {
            assert_eq!(Duration::parse(text).ok().map(|d| d.0), want, "{text}");
        }
    }

    #[test]
    fn rates_sizes_percents() {
        assert_eq!(Rate::parse("20/s", false).unwrap().0, 20.0);
        assert_eq!(Rate::parse("120/m", false).unwrap().0, 2.0);
        assert_eq!(Rate::parse("3600/h", false).unwrap().0, 1.0);
        assert!(Rate::parse("20", false).is_err());
        assert_eq!(Rate::parse("20", true).unwrap().0, 20.0);
        assert!(Rate::parse("20/fortnight", false).is_err());
        assert_eq!(Bytes::parse("1KiB").unwrap().0, 1024);
        assert_eq!(Bytes::parse("1.5GB").unwrap().0, 1_500_000_000);
        assert_eq!(Bytes::parse("512").unwrap().0, 512);
        assert!(Bytes::parse("3 parsecs").is_err());
        assert_eq!(Percent::parse("60%", false).unwrap().0, 0.6);
        assert_eq!(Percent::parse("0.25", true).unwrap().0, 0.25);
        assert!(Percent::parse("60", false).is_err());
        assert_eq!(Amount::parse("60%").unwrap(), Amount::Percent(Percent(0.6)));
        assert_eq!(Amount::parse("8GiB").unwrap(), Amount::Bytes(Bytes(8 << 30)));
    }

    #[test]
    fn display_round_trips() {
        assert_eq!(Duration::parse("1m30s").unwrap(), Duration(90_000_000_000));
        assert_eq!(Duration(170_000_000_000).to_string(), "2m50s");
        assert_eq!(Duration(5_400_000_000_000).to_string(), "1h30m");
        assert!(Duration::parse("1m30").is_err());
        for text in ["250ms", "2s", "90s", "2m", "1h", "500us", "10ns", "1.5ms", "1h2m3s", "61.5s"] {
            let d = Duration::parse(text).unwrap();
            assert_eq!(Duration::parse(&d.to_string()).unwrap(), d, "{text} -> {d}");
        }
        for text in ["8GiB", "512MB", "1KiB", "100B", "1.5GiB"] {
            let b = Bytes::parse(text).unwrap();
            assert_eq!(Bytes::parse(&b.to_string()).unwrap(), b, "{text} -> {b}");
        }
        assert_eq!(Rate(20.0).to_string(), "20/s");
        assert_eq!(Percent(0.05).to_string(), "5%");
    }

    #[test]
    fn ranges() {
        assert_eq!(split_range("32..512"), Some(("32", "512")));
        assert_eq!(split_range("1/s..500/s"), Some(("1/s", "500/s")));
        assert_eq!(split_range("5%..=15%"), Some(("5%", "15%")));
        assert_eq!(split_range("32"), None);
    }
}
