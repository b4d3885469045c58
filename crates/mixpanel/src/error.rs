//! Why a whole request could not be decoded. Problems with single records
//! are not errors of the request: they are [`crate::RecordError`]s, so the
//! valid records sent with them still go through.

/// A request that cannot be decoded at all. Messages are lowercase, have no
/// trailing period and never contain payload content, so the server may show
/// them to clients and write them to logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Neither a `data` parameter nor a JSON body.
    #[error("request carries no data")]
    NoData,
    /// The body, or its decompressed form, is larger than the limit.
    #[error("request exceeds max limit of {limit} bytes")]
    BodyTooLarge {
        /// `Limits::body_bytes_max`.
        limit: usize,
    },
    /// More records than `Limits::records_max`.
    #[error("request exceeds max limit of {limit} records")]
    TooManyRecords {
        /// `Limits::records_max`.
        limit: usize,
    },
    /// Gzip announced or detected, but the stream is corrupt.
    #[error("body is not valid gzip")]
    BadGzip,
    /// The `data` parameter is neither JSON nor valid base64.
    #[error("data is not valid base64")]
    BadBase64,
    /// A parameter, the body or the decoded `data` is not UTF-8.
    #[error("request is not valid utf-8")]
    InvalidUtf8,
    /// The payload is not the JSON we accept.
    #[error("invalid json: {detail}")]
    BadJson {
        /// `serde_json`'s message (position and kind, never content), or ours.
        detail: String,
    },
}

impl DecodeError {
    /// The HTTP status the server should answer with: 413 for an oversized
    /// body (the browser SDK halves its batch on 413), 400 otherwise (the
    /// SDKs drop a batch on 400 rather than retry it forever).
    pub fn http_status(&self) -> u16 {
        match self {
            DecodeError::BodyTooLarge { .. } => 413,
            _ => 400,
        }
    }

    pub(crate) fn bad_json(error: &serde_json::Error) -> DecodeError {
        DecodeError::BadJson {
            detail: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_oversized_bodies_are_413() {
        assert_eq!(DecodeError::BodyTooLarge { limit: 1 }.http_status(), 413);
        let others = [
            DecodeError::NoData,
            DecodeError::TooManyRecords { limit: 1 },
            DecodeError::BadGzip,
            DecodeError::BadBase64,
            DecodeError::InvalidUtf8,
            DecodeError::BadJson {
                detail: String::new(),
            },
        ];
        for error in others {
            assert_eq!(error.http_status(), 400, "{error}");
        }
    }

    #[test]
    fn messages_are_lowercase_without_trailing_period() {
        let error = DecodeError::BodyTooLarge { limit: 10 };
        assert_eq!(error.to_string(), "request exceeds max limit of 10 bytes");
        let error = DecodeError::TooManyRecords { limit: 2000 };
        assert_eq!(
            error.to_string(),
            "request exceeds max limit of 2000 records"
        );
        for error in [
            DecodeError::NoData,
            DecodeError::BadGzip,
            DecodeError::BadBase64,
            DecodeError::InvalidUtf8,
        ] {
            let message = error.to_string();
            assert_eq!(message, message.to_lowercase());
            assert!(!message.ends_with('.'));
        }
    }
}
