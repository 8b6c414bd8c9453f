//! Times are stored as INTEGER microseconds since the Unix epoch: exact (the
//! clock port truncates to microseconds), ordered, and cheap to add durations to.

use chrono::{DateTime, Utc};
use tandem_ports::StoreError;

/// A time as stored.
pub(crate) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// An optional time as stored.
pub(crate) fn opt_micros(at: Option<DateTime<Utc>>) -> Option<i64> {
    at.map(micros)
}

/// A stored time, read back.
pub(crate) fn time(micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| StoreError::Backend(format!("stored time out of range: {micros}").into()))
}

/// A stored optional time, read back.
pub(crate) fn opt_time(micros: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    micros.map(time).transpose()
}
