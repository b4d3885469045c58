//! Client timestamps arrive in seconds (browser, Python: floats with a
//! millisecond fraction) or in milliseconds (Node, Swift, Android: integers).
//! Everything past this module is in milliseconds.

use serde_json::Value;

pub const MS_PER_DAY: i64 = 86_400_000;

/// A numeric time at or above this is taken as milliseconds: 1e11 seconds is
/// the year 5138, 1e11 milliseconds is March 1973.
const MILLIS_THRESHOLD: f64 = 1e11;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("time must be a number of seconds or milliseconds since the epoch")]
    NotANumber,
    #[error("time is out of range")]
    OutOfRange,
}

/// Normalises a client `time` value to milliseconds. Numeric strings are
/// accepted, as Mixpanel's ingestion does.
pub fn millis_from_client_time(value: &Value) -> Result<i64, TimeError> {
    let number = match value {
        Value::Number(number) => number.as_f64().ok_or(TimeError::NotANumber)?,
        Value::String(text) => text.trim().parse::<f64>().map_err(|_| TimeError::NotANumber)?,
        _ => return Err(TimeError::NotANumber),
    };
    if !number.is_finite() || number < 0.0 {
        return Err(TimeError::OutOfRange);
    }
    let millis = if number >= MILLIS_THRESHOLD { number } else { number * 1000.0 };
    // Year 9999 bounds every later conversion to calendar dates.
    if millis > 253_402_300_799_000.0 {
        return Err(TimeError::OutOfRange);
    }
    Ok(millis.round() as i64)
}

/// Days since the Unix epoch (UTC) of a millisecond timestamp.
pub fn day_of_ms(time_ms: i64) -> i32 {
    time_ms.div_euclid(MS_PER_DAY) as i32
}

pub fn now_ms() -> i64 {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seconds_and_millis_normalise_to_millis() {
        assert_eq!(millis_from_client_time(&json!(1795317755.287)), Ok(1795317755287));
        assert_eq!(millis_from_client_time(&json!(1795317755)), Ok(1795317755000));
        assert_eq!(millis_from_client_time(&json!(1795317755287_i64)), Ok(1795317755287));
        assert_eq!(millis_from_client_time(&json!("1795317755")), Ok(1795317755000));
    }

    #[test]
    fn non_numbers_are_rejected() {
        assert_eq!(millis_from_client_time(&json!("yesterday")), Err(TimeError::NotANumber));
        assert_eq!(millis_from_client_time(&json!(null)), Err(TimeError::NotANumber));
        assert_eq!(millis_from_client_time(&json!(-5)), Err(TimeError::OutOfRange));
    }

    #[test]
    fn days_are_utc_and_floor_negative_times() {
        assert_eq!(day_of_ms(0), 0);
        assert_eq!(day_of_ms(MS_PER_DAY - 1), 0);
        assert_eq!(day_of_ms(-1), -1);
    }
}
