//! Serde helpers for record fields: instants as Unix milliseconds, JSON as text.
//!
//! postcard cannot carry `serde_json::Value` (it needs a self-describing format), so JSON
//! fields are stored as their text. Instants are truncated to the millisecond, the
//! precision of the plugin interface's clock.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sop_clock::Timestamp;

fn from_ms<E: serde::de::Error>(ms: i64) -> Result<Timestamp, E> {
    Timestamp::from_timestamp_millis(ms)
        .ok_or_else(|| E::custom(format!("instant {ms} ms out of range")))
}

pub(crate) mod ms {
    use super::*;
    pub(crate) fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        t.timestamp_millis().serialize(s)
    }
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        from_ms(i64::deserialize(d)?)
    }
}

pub(crate) mod opt_ms {
    use super::*;
    pub(crate) fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        t.map(|t| t.timestamp_millis()).serialize(s)
    }
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Timestamp>, D::Error> {
        Option::<i64>::deserialize(d)?.map(from_ms).transpose()
    }
}

pub(crate) mod json_map {
    use super::*;
    use serde_json::{Map, Value};
    pub(crate) fn serialize<S: Serializer>(
        m: &Map<String, Value>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        serde_json::to_string(m)
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Map<String, Value>, D::Error> {
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(serde::de::Error::custom)
    }
}

pub(crate) mod json_value {
    use super::*;
    use serde_json::Value;
    pub(crate) fn serialize<S: Serializer>(v: &Value, s: S) -> Result<S::Ok, S::Error> {
        serde_json::to_string(v)
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(serde::de::Error::custom)
    }
}
