//! [`Decimal`]: an exact decimal number carried as its canonical text, so
//! that PostgreSQL's `numeric` (up to 131,072 digits before the point) and
//! MySQL's `DECIMAL(65, 30)` pass through the uniform face without losing a
//! digit. It does no arithmetic: convert to a numeric library of your choice
//! from [`Decimal::as_str`]. It never puts the number itself in an error.

use std::fmt;
use std::str::FromStr;

/// The largest exponent [`Decimal::from_str`] expands; larger ones would
/// make a string of that many zeros out of a few bytes of input.
const MAX_EXPONENT: u64 = 262_144;

/// An exact decimal number, kept as canonical text: an optional `-`, the
/// integer digits without leading zeros, and the fraction digits as given
/// (trailing zeros are kept: the scale is part of the value, as in SQL).
/// PostgreSQL's special values `NaN`, `Infinity` and `-Infinity` are
/// allowed; MySQL refuses them.
///
/// Equality compares the canonical text, so `1.5` and `1.50` differ, as the
/// databases print them differently.
///
/// ```
/// use tidepool::Decimal;
/// let d: Decimal = "+0012.340".parse().unwrap();
/// assert_eq!(d.as_str(), "12.340");
/// assert_eq!("1.5e-3".parse::<Decimal>().unwrap().as_str(), "0.0015");
/// assert_eq!(Decimal::from(-42i64).as_str(), "-42");
/// assert!("12,5".parse::<Decimal>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decimal(String);

/// Why text is not a [`Decimal`]. Never includes the text, which may be
/// sensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecimalError {
    /// Not of the form `[+-]digits[.digits][e[+-]digits]`, `NaN` or
    /// `[+-]Infinity`.
    #[error("not a decimal number: expected an optional sign, digits, an optional point and fraction, and an optional exponent")]
    Syntax,
    /// The exponent is beyond ±262,144.
    #[error("the decimal's exponent is too large to expand (at most ±262144)")]
    ExponentTooLarge,
}

impl Decimal {
    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The canonical text, owned.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Whether this is a number (not `NaN` or an infinity).
    pub fn is_finite(&self) -> bool {
        self.0.as_bytes().last().is_some_and(|b| b.is_ascii_digit())
    }

    /// The nearest `f64` (`NaN` and the infinities map to theirs). Lossy
    /// beyond 15 to 17 significant digits.
    ///
    /// ```
    /// let d: tidepool::Decimal = "2.5".parse().unwrap();
    /// assert_eq!(d.to_f64(), 2.5);
    /// ```
    pub fn to_f64(&self) -> f64 {
        // The canonical forms, specials included, are all Rust float syntax.
        self.0.parse().unwrap_or(f64::NAN)
    }

    /// The value as an integer, if it has no fractional part (trailing
    /// zeros after the point are fine) and fits in an `i128`.
    ///
    /// ```
    /// let d: tidepool::Decimal = "-7.000".parse().unwrap();
    /// assert_eq!(d.to_i128(), Some(-7));
    /// assert_eq!("7.5".parse::<tidepool::Decimal>().unwrap().to_i128(), None);
    /// ```
    pub fn to_i128(&self) -> Option<i128> {
        if !self.is_finite() {
            return None;
        }
        let (int, frac) = self.0.split_once('.').unwrap_or((&self.0, ""));
        if !frac.bytes().all(|b| b == b'0') {
            return None;
        }
        int.parse().ok()
    }

    /// The shortest decimal that reads back as `f`, or `None` for `NaN`
    /// and the infinities. Exact for the float, not for what it was meant
    /// to hold: `0.1f64` gives `0.1`.
    ///
    /// ```
    /// assert_eq!(tidepool::Decimal::from_f64(0.1).unwrap().as_str(), "0.1");
    /// assert!(tidepool::Decimal::from_f64(f64::NAN).is_none());
    /// ```
    pub fn from_f64(f: f64) -> Option<Decimal> {
        // Rust's Display for floats never uses an exponent and is the
        // shortest text that round-trips.
        f.is_finite()
            .then(|| canonical(&f.to_string()).ok())
            .flatten()
    }
}

impl FromStr for Decimal {
    type Err = DecimalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        canonical(s.trim())
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! decimal_from_int {
    ($($t:ty),*) => {
        $(impl From<$t> for Decimal {
            fn from(n: $t) -> Self {
                Decimal(n.to_string())
            }
        })*
    };
}

decimal_from_int!(i8, i16, i32, i64, i128, u8, u16, u32, u64, u128);

fn canonical(s: &str) -> Result<Decimal, DecimalError> {
    let special = match s.to_ascii_lowercase().as_str() {
        "nan" => Some("NaN"),
        "infinity" | "+infinity" | "inf" | "+inf" => Some("Infinity"),
        "-infinity" | "-inf" => Some("-Infinity"),
        _ => None,
    };
    if let Some(special) = special {
        return Ok(Decimal(special.to_string()));
    }
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if int.len() + frac.len() == 0 || !all_digits(int) || !all_digits(frac) {
        return Err(DecimalError::Syntax);
    }
    let exponent: i64 = match exponent {
        None => 0,
        Some(e) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !all_digits(digits) {
                return Err(DecimalError::Syntax);
            }
            let magnitude: u64 = digits
                .parse()
                .ok()
                .filter(|m| *m <= MAX_EXPONENT)
                .ok_or(DecimalError::ExponentTooLarge)?;
            // Bounded above, so the cast cannot wrap.
            let magnitude = magnitude as i64;
            if e.starts_with('-') {
                -magnitude
            } else {
                magnitude
            }
        }
    };
    // value = digits × 10^-scale
    let mut digits = format!("{int}{frac}");
    let mut scale = frac.len() as i64 - exponent;
    if scale < 0 {
        digits.extend(std::iter::repeat_n('0', scale.unsigned_abs() as usize));
        scale = 0;
    }
    let scale = scale as usize;
    if digits.len() < scale {
        let pad = "0".repeat(scale - digits.len());
        digits.insert_str(0, &pad);
    }
    let (int, frac) = digits.split_at(digits.len() - scale);
    let int = int.trim_start_matches('0');
    let zero = int.is_empty() && frac.bytes().all(|b| b == b'0');
    let mut out = String::with_capacity(int.len() + frac.len() + 3);
    if negative && !zero {
        out.push('-');
    }
    out.push_str(if int.is_empty() { "0" } else { int });
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    Ok(Decimal(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        s.parse::<Decimal>().unwrap().into_string()
    }

    #[test]
    fn decimals_are_kept_in_canonical_text_with_their_scale() {
        assert_eq!(text("12.340"), "12.340");
        assert_eq!(text("+007"), "7");
        assert_eq!(text(".5"), "0.5");
        assert_eq!(text("5."), "5");
        assert_eq!(text("-0.00"), "0.00");
        assert_eq!(text("-0"), "0");
        assert_eq!(text(" 1 "), "1");
        assert_eq!(text("1.5E3"), "1500");
        assert_eq!(text("1.50e1"), "15.0");
        assert_eq!(text("-1.5e-3"), "-0.0015");
        assert_eq!(text("123e-1"), "12.3");
        assert_eq!(text("0e5"), "0");
        let long = format!("{}.{}", "9".repeat(100), "1".repeat(50));
        assert_eq!(text(&long), long);
    }

    #[test]
    fn postgres_special_values_are_decimals_but_not_finite() {
        assert_eq!(text("nan"), "NaN");
        assert_eq!(text("Infinity"), "Infinity");
        assert_eq!(text("-inf"), "-Infinity");
        assert!(!"NaN".parse::<Decimal>().unwrap().is_finite());
        assert!("0".parse::<Decimal>().unwrap().is_finite());
        assert!("-Infinity".parse::<Decimal>().unwrap().to_f64() < 0.0);
    }

    #[test]
    fn malformed_text_is_refused_without_echoing_it() {
        for bad in [
            "", "-", ".", "1.2.3", "1e", "1e+", "e5", "12,5", "0x10", "1 000", "--1", "1e5.5",
        ] {
            let err = bad.parse::<Decimal>().unwrap_err();
            assert_eq!(err, DecimalError::Syntax, "{bad:?}");
        }
        let err = "1e999999999".parse::<Decimal>().unwrap_err();
        assert_eq!(err, DecimalError::ExponentTooLarge);
        assert!(!err.to_string().contains("999"));
    }

    #[test]
    fn integral_decimals_convert_to_integers_and_others_do_not() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(d("18446744073709551615").to_i128(), Some(u64::MAX.into()));
        assert_eq!(d("-3.000").to_i128(), Some(-3));
        assert_eq!(d("3.001").to_i128(), None);
        assert_eq!(d("NaN").to_i128(), None);
        assert_eq!(d(&"9".repeat(60)).to_i128(), None);
    }

    #[test]
    fn floats_become_their_shortest_round_tripping_text() {
        assert_eq!(Decimal::from_f64(1.25).unwrap().as_str(), "1.25");
        assert_eq!(Decimal::from_f64(-0.0).unwrap().as_str(), "0");
        assert_eq!(
            Decimal::from_f64(1e21).unwrap().as_str(),
            "1000000000000000000000"
        );
        assert_eq!(Decimal::from_f64(f64::INFINITY), None);
    }
}
