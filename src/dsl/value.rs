//! Decoding single KDL values (with optional type annotations) into typed values.

use kdl::KdlValue;

use super::diag::Code;
use super::suggest;
use super::units::{self, Amount, Bytes, Duration, Percent, Range, Rate, UnitError};

/// Why a value was rejected: a code, a message for the label, and a help line.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueError {
    pub code: Code,
    pub message: String,
    pub help: String,
}

impl ValueError {
    pub fn new(code: Code, message: impl Into<String>, help: impl Into<String>) -> Self {
        ValueError { code, message: message.into(), help: help.into() }
    }
}

/// A type that can be decoded from one KDL value.
pub trait FromKdl: Sized {
    /// What the decoder expects, for messages ("a duration").
    const EXPECTED: &'static str;
    fn from_kdl(v: &KdlValue, ty: Option<&str>) -> Result<Self, ValueError>;
}

/// Short name of a KDL value's type, for "expected X, found Y" messages.
pub fn kind_of(v: &KdlValue) -> &'static str {
    match v {
        KdlValue::String(_) => "a string",
        KdlValue::Integer(_) => "an integer",
        KdlValue::Float(_) => "a number",
        KdlValue::Bool(_) => "a boolean",
        KdlValue::Null => "#null",
    }
}

fn wrong_type<T: FromKdl>(v: &KdlValue, help: &str) -> ValueError {
    ValueError::new(Code::WrongType, format!("expected {}, found {}", T::EXPECTED, kind_of(v)), help)
}

fn no_annotation<T: FromKdl>(ty: Option<&str>) -> Result<(), ValueError> {
    match ty {
        None => Ok(()),
        Some(t) => Err(ValueError::new(
            Code::UnexpectedType,
            format!("type annotation `({t})` does not apply to {}", T::EXPECTED),
            "remove the annotation",
        )),
    }
}

fn unit_err(code: Code, e: UnitError) -> ValueError {
    ValueError::new(code, e.message, e.help)
}

impl FromKdl for String {
    const EXPECTED: &'static str = "a string";
    fn from_kdl(v: &KdlValue, ty: Option<&str>) -> Result<Self, ValueError> {
        no_annotation::<Self>(ty)?;
        match v {
            KdlValue::String(s) => Ok(s.clone()),
            _ => Err(wrong_type::<Self>(v, "put the value in double quotes")),
        }
    }
}

impl FromKdl for bool {
    const EXPECTED: &'static str = "a boolean";
    fn from_kdl(v: &KdlValue, ty: Option<&str>) -> Result<Self, ValueError> {
        no_annotation::<Self>(ty)?;
        match v {
            KdlValue::Bool(b) => Ok(*b),
            KdlValue::String(s) if s == "true" || s == "false" => Err(ValueError::new(
                Code::WrongType,
                format!("expected a boolean, found the string \"{s}\""),
                format!("KDL 2 booleans are written #{s}"),
            )),
            _ => Err(wrong_type::<Self>(v, "write #true or #false")),
        }
    }
}

fn integer(v: &KdlValue, what: &str) -> Result<i128, ValueError> {
    match v {
        KdlValue::Integer(i) => Ok(*i),
        KdlValue::Float(f) if f.fract() == 0.0 && f.abs() < 1e30 => Ok(*f as i128),
        KdlValue::String(s) => s.replace('_', "").trim().parse::<i128>().map_err(|_| {
            ValueError::new(
                Code::WrongType,
                format!("expected {what}, found the string \"{s}\""),
                "write the number without quotes, e.g. 16",
            )
        }),
        _ => Err(ValueError::new(
            Code::WrongType,
            format!("expected {what}, found {}", kind_of(v)),
            "write a whole number, e.g. 16",
        )),
    }
}

macro_rules! int_impl {
    ($($t:ty => $what:literal),*) => {$(
        impl FromKdl for $t {
            const EXPECTED: &'static str = $what;
            fn from_kdl(v: &KdlValue, ty: Option<&str>) -> Result<Self, ValueError> {
                no_annotation::<Self>(ty)?;
                let i = integer(v, $what)?;
                <$t>::try_from(i).map_err(|_| ValueError::new(
                    Code::OutOfRange,
                    format!("{i} is out of range for {}", $what),
                    format!("use a value between {} and {}", <$t>::MIN, <$t>::MAX),
                ))
            }
        }
    )*};
}
int_impl!(u32 => "a whole number", u64 => "a whole number", i64 => "an integer");

impl FromKdl for f64 {
    const EXPECTED: &'static str = "a number";
    fn from_kdl(v: &KdlValue, ty: Option<&str>) -> Result<Self, ValueError> {
        no_annotation::<Self>(ty)?;
        match v {
            KdlValue::Integer(i) => Ok(*i as f64),
            KdlValue::Float(f) if f.is_finite() => Ok(*f),
            KdlValue::Float(_) => {
                Err(ValueError::new(Code::InvalidNumber, "the number must be finite", "use a finite number"))
            }
            KdlValue::String(s) => {
                s.replace('_', "").trim().parse::<f64>().ok().filter(|f| f.is_finite()).ok_or_else(|| {
                    ValueError::new(
                        Code::WrongType,
                        format!("expected a number, found the string \"{s}\""),
                        "write the number without quotes, e.g. 0.5",
                    )
                })
            }
            _ => Err(wrong_type::<Self>(v, "write a number, e.g. 0.5")),
        }
    }
}

/// A number with a type annotation naming its unit: `(ms)250`.
fn annotated(v: &KdlValue, ty: Option<&str>) -> Option<f64> {
    ty?;
    match v {
        KdlValue::Integer(i) => Some(*i as f64),
        KdlValue::Float(f) => Some(*f),
        _ => None,
    }
}

impl FromKdl for Duration {
    const EXPECTED: &'static str = "a duration";
    fn from_kdl(v: &KdlValue, ty: Option<&str>) -> Result<Self, ValueError> {
        if let Some(n) = annotated(v, ty) {
            return units::duration_from(n, ty.unwrap_or(""), &format!("({}){n}", ty.unwrap_or("")))
                .map_err(|e| unit_err(Code::InvalidDuration, e));
        }
        no_annotation::<Self>(ty)?;
        match v {
            KdlValue::String(s) => Duration::parse(s).map_err(|e| unit_err(Code::InvalidDuration, e)),
            KdlValue::Integer(0) => Ok(Duration(0)),
            KdlValue::Integer(_) | KdlValue::Float(_) => Err(ValueError::new(
                Code::InvalidDuration,
                "a duration needs a unit",
                "write it as a string with a unit, like \"250ms\" or \"2s\", or annotate it: (ms)250",
            )),
            _ => Err(wrong_type::<Self>(v, units::DURATION_HELP)),
        }
    }
}

impl FromKdl for Rate {
    const EXPECTED: &'static str = "a rate";
    fn from_kdl(v: &KdlValue, ty: Option<&str>) -> Result<Self, ValueError> {
        no_annotation::<Self>(ty)?;
        match v {
            KdlValue::String(s) => Rate::parse(s, false).map_err(|e| unit_err(Code::InvalidRate, e)),
            KdlValue::Integer(_) | KdlValue::Float(_) => Err(ValueError::new(
                Code::InvalidRate,
                "a rate needs a time unit",
                "write it as a string, like \"20/s\" or \"600/m\"",
            )),
            _ => Err(wrong_type::<Self>(v, units::RATE_HELP)),
        }
    }
}

impl FromKdl for Bytes {
    const EXPECTED: &'static str = "a size";
    fn from_kdl(v: &KdlValue, ty: Option<&str>) -> Result<Self, ValueError> {
        if let Some(n) = annotated(v, ty) {
            let unit = ty.unwrap_or("");
            let scale = units::size_unit(unit).ok_or_else(|| {
                ValueError::new(Code::InvalidSize, format!("`{unit}` is not a unit of size"), units::SIZE_HELP)
            })?;
            if n < 0.0 {
                return Err(ValueError::new(Code::InvalidSize, "sizes must be >= 0", units::SIZE_HELP));
            }
            return Ok(Bytes((n * scale as f64).round() as u64));
        }
        no_annotation::<Self>(ty)?;
        match v {
            KdlValue::String(s) => Bytes::parse(s).map_err(|e| unit_err(Code::InvalidSize, e)),
            KdlValue::Integer(i) if *i >= 0 && *i <= u64::MAX as i128 => Ok(Bytes(*i as u64)),
            KdlValue::Integer(_) => Err(ValueError::new(Code::InvalidSize, "sizes must be >= 0", units::SIZE_HELP)),
            _ => Err(wrong_type::<Self>(v, units::SIZE_HELP)),
        }
    }
}

impl FromKdl for Percent {
    const EXPECTED: &'static str = "a percentage";
    fn from_kdl(v: &KdlValue, ty: Option<&str>) -> Result<Self, ValueError> {
        no_annotation::<Self>(ty)?;
        match v {
            KdlValue::String(s) => Percent::parse(s, true).map_err(|e| unit_err(Code::InvalidPercent, e)),
            KdlValue::Float(f) if (0.0..=1.0).contains(f) => Ok(Percent(*f)),
            KdlValue::Integer(0) => Ok(Percent(0.0)),
            KdlValue::Integer(1) => Ok(Percent(1.0)),
            KdlValue::Integer(_) | KdlValue::Float(_) => Err(ValueError::new(
                Code::InvalidPercent,
                "a bare number here is a fraction between 0 and 1",
                "write a percentage as a string, like \"60%\"",
            )),
            _ => Err(wrong_type::<Self>(v, units::PERCENT_HELP)),
        }
    }
}

impl FromKdl for Amount {
    const EXPECTED: &'static str = "a size or a percentage";
    fn from_kdl(v: &KdlValue, ty: Option<&str>) -> Result<Self, ValueError> {
        match v {
            KdlValue::String(s) if s.trim_end().ends_with('%') && ty.is_none() => {
                Percent::parse(s, false).map(Amount::Percent).map_err(|e| unit_err(Code::InvalidPercent, e))
            }
            _ => Bytes::from_kdl(v, ty).map(Amount::Bytes),
        }
    }
}

/// Text forms that can be the ends of a range.
pub trait RangeEnd: Sized + PartialOrd + Copy {
    const EXPECTED: &'static str;
    const CODE: Code;
    fn parse_end(text: &str) -> Result<Self, UnitError>;
}

impl RangeEnd for u64 {
    const EXPECTED: &'static str = "a range of whole numbers";
    const CODE: Code = Code::InvalidRange;
    fn parse_end(text: &str) -> Result<Self, UnitError> {
        text.replace('_', "")
            .parse::<u64>()
            .map_err(|_| UnitError { message: format!("`{text}` is not a whole number"), help: units::RANGE_HELP })
    }
}
impl RangeEnd for Duration {
    const EXPECTED: &'static str = "a range of durations";
    const CODE: Code = Code::InvalidDuration;
    fn parse_end(text: &str) -> Result<Self, UnitError> {
        Duration::parse(text)
    }
}
impl RangeEnd for Rate {
    const EXPECTED: &'static str = "a range of rates";
    const CODE: Code = Code::InvalidRate;
    fn parse_end(text: &str) -> Result<Self, UnitError> {
        Rate::parse(text, false)
    }
}
impl RangeEnd for Percent {
    const EXPECTED: &'static str = "a range of percentages";
    const CODE: Code = Code::InvalidPercent;
    fn parse_end(text: &str) -> Result<Self, UnitError> {
        Percent::parse(text, true)
    }
}

/// Parses `lo..hi` text with both ends of type `T`.
pub fn parse_range<T: RangeEnd>(text: &str) -> Result<Range<T>, ValueError> {
    let (a, b) = units::split_range(text).ok_or_else(|| {
        ValueError::new(
            Code::InvalidRange,
            format!("`{text}` is not a range"),
            format!("{}; write `low..high`", units::RANGE_HELP),
        )
    })?;
    let lo = T::parse_end(a).map_err(|e| ValueError::new(T::CODE, e.message, e.help))?;
    let hi = T::parse_end(b).map_err(|e| ValueError::new(T::CODE, e.message, e.help))?;
    if lo > hi {
        return Err(ValueError::new(
            Code::InvalidRange,
            format!("the range `{text}` is empty: its low end is above its high end"),
            "write the smaller value first",
        ));
    }
    Ok(Range { lo, hi })
}

impl<T: RangeEnd> FromKdl for Range<T> {
    const EXPECTED: &'static str = T::EXPECTED;
    fn from_kdl(v: &KdlValue, ty: Option<&str>) -> Result<Self, ValueError> {
        no_annotation::<Self>(ty)?;
        match v {
            KdlValue::String(s) => parse_range(s),
            _ => Err(ValueError::new(
                Code::WrongType,
                format!("expected {}, found {}", T::EXPECTED, kind_of(v)),
                format!("{} in double quotes", units::RANGE_HELP),
            )),
        }
    }
}

/// Declares a keyword enum decoded from a string, with "did you mean" on typos.
#[macro_export]
macro_rules! keyword_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }
        /// Serialised as the keyword the scenario language uses.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        /// Read back from the keyword (a result document's JSON); an unknown one is refused
        /// with the keywords this version knows.
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                Self::from_name(&s).ok_or_else(|| serde::de::Error::unknown_variant(&s, Self::NAMES))
            }
        }
        impl $name {
            pub const NAMES: &'static [&'static str] = &[$($text),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            pub fn from_name(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
        impl $crate::dsl::value::FromKdl for $name {
            const EXPECTED: &'static str = $what;
            fn from_kdl(v: &kdl::KdlValue, ty: Option<&str>) -> Result<Self, $crate::dsl::value::ValueError> {
                $crate::dsl::value::keyword(v, ty, $what, Self::NAMES).map(|s| Self::from_name(s).expect("name checked"))
            }
        }
    };
}

/// Shared body of keyword decoding: the string must be one of `names`.
pub fn keyword<'n>(v: &KdlValue, ty: Option<&str>, what: &str, names: &'n [&'n str]) -> Result<&'n str, ValueError> {
    if let Some(t) = ty {
        return Err(ValueError::new(
            Code::UnexpectedType,
            format!("type annotation `({t})` does not apply to {what}"),
            "remove the annotation",
        ));
    }
    let s = match v {
        KdlValue::String(s) => s,
        _ => {
            return Err(ValueError::new(
                Code::WrongType,
                format!("expected {what}, found {}", kind_of(v)),
                suggest::list_help(names, "values"),
            ))
        }
    };
    names.iter().copied().find(|n| *n == s).ok_or_else(|| {
        ValueError::new(
            Code::UnknownValue,
            format!("`{s}` is not a known {what}"),
            suggest::help_for(s, names, "values"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> KdlValue {
        KdlValue::String(x.into())
    }

    #[test]
    fn decode_table() {
        assert_eq!(Duration::from_kdl(&s("2s"), None), Ok(Duration(2_000_000_000)));
        assert_eq!(Duration::from_kdl(&KdlValue::Integer(250), Some("ms")), Ok(Duration(250_000_000)));
        assert_eq!(Duration::from_kdl(&KdlValue::Integer(250), None).unwrap_err().code, Code::InvalidDuration);
        assert_eq!(Duration::from_kdl(&KdlValue::Bool(true), None).unwrap_err().code, Code::WrongType);
        assert_eq!(Rate::from_kdl(&s("20/s"), None), Ok(Rate(20.0)));
        assert_eq!(Rate::from_kdl(&KdlValue::Integer(20), None).unwrap_err().code, Code::InvalidRate);
        assert_eq!(Bytes::from_kdl(&KdlValue::Integer(512), Some("MiB")), Ok(Bytes(512 << 20)));
        assert_eq!(Percent::from_kdl(&s("60%"), None), Ok(Percent(0.6)));
        assert_eq!(Percent::from_kdl(&KdlValue::Integer(60), None).unwrap_err().code, Code::InvalidPercent);
        assert_eq!(u32::from_kdl(&KdlValue::Integer(-1), None).unwrap_err().code, Code::OutOfRange);
        assert_eq!(u32::from_kdl(&KdlValue::Float(1.5), None).unwrap_err().code, Code::WrongType);
        assert_eq!(bool::from_kdl(&s("true"), None).unwrap_err().code, Code::WrongType);
        assert_eq!(String::from_kdl(&KdlValue::Integer(1), None).unwrap_err().code, Code::WrongType);
        assert_eq!(String::from_kdl(&s("x"), Some("ms")).unwrap_err().code, Code::UnexpectedType);
        let r = Range::<u64>::from_kdl(&s("32..512"), None).unwrap();
        assert_eq!((r.lo, r.hi), (32, 512));
        assert_eq!(Range::<u64>::from_kdl(&s("512..32"), None).unwrap_err().code, Code::InvalidRange);
        let r = Range::<Rate>::from_kdl(&s("1/s..500/s"), None).unwrap();
        assert_eq!((r.lo.0, r.hi.0), (1.0, 500.0));
        assert_eq!(Range::<Rate>::from_kdl(&s("1..500/s"), None).unwrap_err().code, Code::InvalidRate);
        assert_eq!(Amount::from_kdl(&s("60%"), None), Ok(Amount::Percent(Percent(0.6))));
    }
}
