//! Small value types of the playbook language, each written as one string in YAML.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use chrono_tz::Tz;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Implements string serde and a string JSON schema for a type with `FromStr` + `Display`.
macro_rules! string_value {
    ($ty:ty, $name:literal, $description:literal, $pattern:expr) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                let pattern: Option<&str> = $pattern;
                match pattern {
                    Some(p) => json_schema!({"type": "string", "description": $description, "pattern": p}),
                    None => json_schema!({"type": "string", "description": $description}),
                }
            }
        }
    };
}

/// A length of time written like `30s`, `5m`, `2h`, `1d`, `1w` or `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    seconds: u64,
}

/// The longest duration accepted anywhere: ten years.
pub const MAX_DURATION_SECONDS: u64 = 10 * 365 * 86_400;

const UNITS: [(char, u64); 5] = [
    ('w', 604_800),
    ('d', 86_400),
    ('h', 3_600),
    ('m', 60),
    ('s', 1),
];

impl Duration {
    pub fn from_seconds(seconds: u64) -> Self {
        Duration { seconds }
    }

    pub fn as_seconds(self) -> u64 {
        self.seconds
    }

    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.seconds)
    }
}

impl FromStr for Duration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("empty duration".into());
        }
        if text.contains(char::is_whitespace) {
            let compact: String = text.split_whitespace().collect();
            return Err(match compact.parse::<Duration>() {
                Ok(_) => format!("no spaces allowed: write `{compact}`"),
                Err(_) => "no spaces allowed".into(),
            });
        }
        let mut seconds: u64 = 0;
        let mut rest = text;
        let mut last_unit = usize::MAX;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(format!("expected a number at `{rest}`"));
            }
            let number: u64 = rest[..digits]
                .parse()
                .map_err(|_| format!("`{}` is too large", &rest[..digits]))?;
            let unit = rest[digits..]
                .chars()
                .next()
                .ok_or_else(|| format!("`{}` has no unit", &rest[..digits]))?;
            let Some(position) = UNITS.iter().position(|(u, _)| *u == unit) else {
                return Err(format!("unknown unit `{unit}`"));
            };
            if position <= last_unit && last_unit != usize::MAX {
                return Err("units must go from largest to smallest, each once".into());
            }
            last_unit = position;
            seconds = number
                .checked_mul(UNITS[position].1)
                .and_then(|s| s.checked_add(seconds))
                .filter(|s| *s <= MAX_DURATION_SECONDS)
                .ok_or("longer than ten years")?;
            rest = &rest[digits + unit.len_utf8()..];
        }
        Ok(Duration { seconds })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.seconds == 0 {
            return f.write_str("0s");
        }
        let mut left = self.seconds;
        // Weeks are read but not written: `30d` reads better than `4w2d`.
        for (unit, size) in UNITS.into_iter().skip(1) {
            if left >= size {
                write!(f, "{}{unit}", left / size)?;
                left %= size;
            }
        }
        Ok(())
    }
}

string_value!(
    Duration,
    "Duration",
    "A duration: numbers with units w, d, h, m, s from largest to smallest, e.g. `30s`, `1h30m`, `7d`.",
    Some("^([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$")
);

/// A local time of day, `HH:MM` (24-hour clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay {
    pub hour: u8,
    pub minute: u8,
}

impl TimeOfDay {
    pub fn minutes_since_midnight(self) -> u32 {
        u32::from(self.hour) * 60 + u32::from(self.minute)
    }
}

impl FromStr for TimeOfDay {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (h, m) = text
            .split_once(':')
            .ok_or_else(|| format!("`{text}` is not HH:MM"))?;
        let valid = |s: &str, max: u8| {
            (1..=2).contains(&s.len())
                && s.bytes().all(|b| b.is_ascii_digit())
                && s.parse::<u8>().is_ok_and(|v| v <= max)
        };
        if !valid(h, 23) || m.len() != 2 || !valid(m, 59) {
            return Err(format!("`{text}` is not a time between 00:00 and 23:59"));
        }
        Ok(TimeOfDay {
            hour: h.parse().unwrap_or(0),
            minute: m.parse().unwrap_or(0),
        })
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

string_value!(
    TimeOfDay,
    "TimeOfDay",
    "A local time of day, HH:MM on a 24-hour clock.",
    Some("^([01]?[0-9]|2[0-3]):[0-5][0-9]$")
);

/// A daily window in local time during which no marketing messages go out, e.g. `22:00-08:00`.
/// It may wrap past midnight. `off` disables quiet hours (for a step override).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuietHours {
    Off,
    Window { start: TimeOfDay, end: TimeOfDay },
}

impl QuietHours {
    /// Whether a local time (minutes since midnight) falls inside the window.
    pub fn contains(self, minutes: u32) -> bool {
        match self {
            QuietHours::Off => false,
            QuietHours::Window { start, end } => {
                let (s, e) = (start.minutes_since_midnight(), end.minutes_since_midnight());
                if s <= e {
                    (s..e).contains(&minutes)
                } else {
                    minutes >= s || minutes < e
                }
            }
        }
    }
}

impl FromStr for QuietHours {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "off" {
            return Ok(QuietHours::Off);
        }
        let (start, end) = text
            .split_once('-')
            .ok_or_else(|| format!("`{text}` is not START-END, e.g. `22:00-08:00`, or `off`"))?;
        let start: TimeOfDay = start.trim().parse()?;
        let end: TimeOfDay = end.trim().parse()?;
        if start == end {
            return Err("start and end are the same time; the window would be empty".into());
        }
        Ok(QuietHours::Window { start, end })
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuietHours::Off => f.write_str("off"),
            QuietHours::Window { start, end } => write!(f, "{start}-{end}"),
        }
    }
}

string_value!(
    QuietHours,
    "QuietHours",
    "A daily local-time window `HH:MM-HH:MM` (may wrap past midnight), or `off`.",
    Some("^(off|([01]?[0-9]|2[0-3]):[0-5][0-9] ?- ?([01]?[0-9]|2[0-3]):[0-5][0-9])$")
);

/// An IANA time zone such as `Asia/Shanghai`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Zone(pub Tz);

impl Default for Zone {
    fn default() -> Self {
        Zone(Tz::Asia__Shanghai)
    }
}

impl FromStr for Zone {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        text.parse::<Tz>()
            .map(Zone)
            .map_err(|_| format!("unknown time zone `{text}`"))
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

string_value!(
    Zone,
    "TimeZone",
    "An IANA time zone name, e.g. `Asia/Shanghai`.",
    None
);

/// Declares a string newtype whose content the checker has validated.
macro_rules! checked_string {
    ($(#[$doc:meta])* $ty:ident, $description:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $ty(pub String);

        impl $ty {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($ty))
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({"type": "string", "description": $description})
            }
        }
    };
}

checked_string!(
    /// A minijinja template (`你好 {{ contact.name }}`), compiled at load time.
    Template,
    "A minijinja template; sees `contact`, `event`, `run`, `steps`, `group`, `playbook`."
);
checked_string!(
    /// A minijinja expression (`'vip' in contact.tags`), compiled at load time.
    Expression,
    "A minijinja expression that decides true or false; sees `contact`, `event`, `run`, `steps`, `group`, `playbook`."
);
checked_string!(
    /// A step id, unique in the playbook: letters, digits, `_` and `-`.
    StepId,
    "A step id: letters, digits, `_` and `-`, unique in the playbook."
);

/// A dotted `plugin.name` pair: an action (`wecom.send_welcome`) or an event type
/// (`wecom.contact_added`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QualifiedName(pub String);

impl QualifiedName {
    /// The plugin part, before the first dot.
    pub fn plugin(&self) -> &str {
        self.0.split_once('.').map_or(&self.0, |(p, _)| p)
    }

    /// The action or event kind, after the first dot.
    pub fn name(&self) -> &str {
        self.0.split_once('.').map_or("", |(_, n)| n)
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl JsonSchema for QualifiedName {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("QualifiedName")
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "`plugin.name`, e.g. `wecom.send_welcome` or `wecom.contact_added`.",
            "pattern": "^[a-z][a-z0-9_-]*\\.[a-z][a-z0-9_]*$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_durations() {
        for (text, seconds) in [
            ("30s", 30),
            ("5m", 300),
            ("1d", 86_400),
            ("1h30m", 5_400),
            ("14d", 1_209_600),
        ] {
            let d: Duration = text.parse().unwrap();
            assert_eq!(d.as_seconds(), seconds, "{text}");
            assert_eq!(d.to_string(), text);
        }
        assert_eq!("90m".parse::<Duration>().unwrap().to_string(), "1h30m");
        assert_eq!("2w".parse::<Duration>().unwrap().to_string(), "14d");
        assert_eq!("0s".parse::<Duration>().unwrap().as_seconds(), 0);
    }

    #[test]
    fn rejects_bad_durations() {
        for text in [
            "",
            "5",
            "m",
            "5x",
            "1m1h",
            "1h1h",
            "1.5h",
            "-5m",
            "5 m",
            "99999999999999999999s",
            "600w",
        ] {
            assert!(text.parse::<Duration>().is_err(), "{text}");
        }
    }

    #[test]
    fn parses_times_and_quiet_hours() {
        assert_eq!("9:05".parse::<TimeOfDay>().unwrap().to_string(), "09:05");
        for bad in ["24:00", "12:60", "12", "12:5", "ab:cd", ""] {
            assert!(bad.parse::<TimeOfDay>().is_err(), "{bad}");
        }
        let q: QuietHours = "22:00-08:00".parse().unwrap();
        assert!(q.contains(23 * 60));
        assert!(q.contains(7 * 60 + 59));
        assert!(!q.contains(8 * 60));
        assert!(!q.contains(12 * 60));
        let day: QuietHours = "12:00-14:00".parse().unwrap();
        assert!(day.contains(13 * 60) && !day.contains(14 * 60));
        assert!("08:00-08:00".parse::<QuietHours>().is_err());
        assert_eq!("off".parse::<QuietHours>().unwrap(), QuietHours::Off);
    }

    #[test]
    fn zones_and_names() {
        assert_eq!(Zone::default().to_string(), "Asia/Shanghai");
        assert!("Mars/Base".parse::<Zone>().is_err());
        let n = QualifiedName("wecom.send_welcome".into());
        assert_eq!((n.plugin(), n.name()), ("wecom", "send_welcome"));
    }
}
