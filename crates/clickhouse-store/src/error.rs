/// What went wrong talking to ClickHouse.
#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    #[error("the ClickHouse URL {url:?} is not usable: it must start with http:// or https://")]
    BadUrl { url: String },
    #[error("could not reach ClickHouse at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("ClickHouse answered {status}: {message}")]
    Server { status: u16, message: String },
    #[error("could not read ClickHouse's answer: {detail}")]
    Decode { detail: String },
}
