//! `Ttl`: a positive duration written as `90m`, `24h`, `7d` or a combination such as
//! `1d12h`, capped at 30 days (DESIGN.md §2).

use std::fmt;
use std::str::FromStr;

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use crate::error::{ValidationError, ValidationProblem};

/// A time-to-live between one second and 30 days, with whole-second precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ttl(u32);

const MINUTE: u32 = 60;
const HOUR: u32 = 60 * MINUTE;
const DAY: u32 = 24 * HOUR;

impl Ttl {
    /// The longest lifetime a session (or anything else) may have.
    pub const MAX: Self = Self(30 * DAY);
    /// The default absolute lifetime of a session.
    pub const DEFAULT_EXPIRES_IN: Self = Self(24 * HOUR);
    /// The default idle timeout of a session.
    pub const DEFAULT_IDLE_TIMEOUT: Self = Self(2 * HOUR);

    /// Builds a TTL from seconds (1..=30 days).
    pub fn from_secs(secs: u32) -> Result<Self, ValidationError> {
        if secs == 0 || secs > Self::MAX.0 {
            return Err(ValidationError::new(
                "duration",
                ValidationProblem::OutOfRange("between 1s and 30d"),
            ));
        }
        Ok(Self(secs))
    }

    /// The units of a duration, with their length in seconds, largest first.
    pub const UNITS: [(char, u32); 4] = [('d', DAY), ('h', HOUR), ('m', MINUTE), ('s', 1)];

    /// The length of a unit, in seconds.
    fn unit_secs(suffix: char) -> Option<u64> {
        Self::UNITS
            .iter()
            .find(|(unit, _)| *unit == suffix)
            .map(|(_, secs)| u64::from(*secs))
    }

    /// Parses what a client sends: a whole number without leading zeros and one
    /// unit (`90m`, `36h`, `7d`), between `1s` and `30d`. One unit keeps the
    /// form exact in an OpenAPI `pattern` (each unit's largest number is
    /// known), which sums of groups are not.
    pub fn parse_single(raw: &str) -> Result<Self, ValidationError> {
        const FORMAT: &str =
            "a whole number and one unit, such as 90m, 36h or 7d (units s, m, h, d)";
        let bad_format = || ValidationError::new("duration", ValidationProblem::Format(FORMAT));
        let Some((split, unit)) = raw.char_indices().last() else {
            return Err(bad_format());
        };
        let number = &raw[..split];
        let unit = Self::unit_secs(unit).ok_or_else(bad_format)?;
        if number.is_empty()
            || number.starts_with('0')
            || !number.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad_format());
        }
        // Anything longer than ten digits is beyond 30 days in any unit.
        let amount: u64 = if number.len() > 10 {
            u64::MAX
        } else {
            number.parse().map_err(|_| bad_format())?
        };
        let secs = u32::try_from(amount.saturating_mul(unit)).unwrap_or(u32::MAX);
        Self::from_secs(secs)
    }

    /// Parses `<number><unit>` groups, units `s`, `m`, `h`, `d` (e.g. `90m`,
    /// `1d12h`): the canonical form this type displays, and what settings
    /// accept. Clients send [`Ttl::parse_single`]'s form.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        const FORMAT: &str = "a duration such as 90m, 24h or 7d (units s, m, h, d)";
        let bad_format = || ValidationError::new("duration", ValidationProblem::Format(FORMAT));
        if raw.is_empty() {
            return Err(bad_format());
        }
        let mut total: u64 = 0;
        let mut digits = String::new();
        for c in raw.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit = Self::unit_secs(c).ok_or_else(bad_format)?;
            if digits.is_empty() || digits.len() > 9 {
                return Err(bad_format());
            }
            let amount: u64 = digits.parse().map_err(|_| bad_format())?;
            total = total.saturating_add(amount.saturating_mul(unit));
            digits.clear();
        }
        if !digits.is_empty() {
            return Err(bad_format());
        }
        let secs = u32::try_from(total).unwrap_or(u32::MAX);
        Self::from_secs(secs)
    }

    /// The length in seconds.
    pub const fn as_secs(self) -> u32 {
        self.0
    }

    /// The length as a chrono duration, for arithmetic on timestamps.
    pub fn as_delta(self) -> TimeDelta {
        TimeDelta::seconds(i64::from(self.0))
    }
}

impl fmt::Display for Ttl {
    /// The canonical form: largest units first, zero groups left out (`1d12h`, `90s` → `1m30s`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        for (suffix, unit) in Self::UNITS {
            if rest >= unit {
                write!(f, "{}{suffix}", rest / unit)?;
                rest %= unit;
            }
        }
        Ok(())
    }
}

impl FromStr for Ttl {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Ttl {
    type Error = ValidationError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<Ttl> for String {
    fn from(ttl: Ttl) -> Self {
        ttl.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_units() {
        assert_eq!(Ttl::parse("90m").unwrap().as_secs(), 90 * 60);
        assert_eq!(Ttl::parse("24h").unwrap().as_secs(), 24 * 3600);
        assert_eq!(Ttl::parse("7d").unwrap().as_secs(), 7 * 86_400);
        assert_eq!(Ttl::parse("45s").unwrap().as_secs(), 45);
    }

    #[test]
    fn a_client_sends_one_unit_without_leading_zeros() {
        assert_eq!(Ttl::parse_single("90m").unwrap().as_secs(), 90 * 60);
        assert_eq!(Ttl::parse_single("30d").unwrap(), Ttl::MAX);
        assert_eq!(Ttl::parse_single("2592000s").unwrap(), Ttl::MAX);
        for bad in [
            "",
            "1d12h",
            "0s",
            "01h",
            "h",
            "31d",
            "721h",
            "43201m",
            "2592001s",
            "1H",
            "1h ",
            "-1h",
            "1.5h",
            "99999999999999999999d",
            "1é",
            "é",
        ] {
            assert!(
                Ttl::parse_single(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn parses_combinations() {
        assert_eq!(Ttl::parse("1d12h").unwrap().as_secs(), 86_400 + 12 * 3600);
        assert_eq!(Ttl::parse("1h30m15s").unwrap().as_secs(), 3600 + 1800 + 15);
    }

    #[test]
    fn caps_at_thirty_days() {
        assert_eq!(Ttl::parse("30d").unwrap(), Ttl::MAX);
        assert!(Ttl::parse("30d1s").is_err());
        assert!(Ttl::parse("721h").is_err());
        assert!(Ttl::parse("999999999d").is_err());
    }

    #[test]
    fn rejects_malformed_and_zero() {
        for bad in [
            "",
            "0m",
            "10",
            "m",
            "1.5h",
            "1w",
            "-1h",
            "1h ",
            " 1h",
            "1H",
            "h1",
            "1000000000s",
        ] {
            assert!(Ttl::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn displays_canonically_and_round_trips() {
        assert_eq!(Ttl::parse("90m").unwrap().to_string(), "1h30m");
        assert_eq!(Ttl::parse("36h").unwrap().to_string(), "1d12h");
        for secs in [1, 59, 60, 3601, 86_399, 86_400, 30 * 86_400] {
            let ttl = Ttl::from_secs(secs).unwrap();
            assert_eq!(ttl.to_string().parse::<Ttl>().unwrap(), ttl);
        }
    }

    #[test]
    fn serializes_as_text() {
        let ttl: Ttl = serde_json::from_str("\"2h\"").unwrap();
        assert_eq!(ttl.as_secs(), 7200);
        assert_eq!(serde_json::to_string(&ttl).unwrap(), "\"2h\"");
        assert!(serde_json::from_str::<Ttl>("\"forever\"").is_err());
    }
}
