//! Delivery of alerts: a webhook (JSON, signed) and mail over SMTP, on a
//! thread of their own with a bounded queue, retried a few times, logged
//! when they finally fail (an alert is already stored and audited before it
//! is queued, so a dead receiver loses no record of it).

use crate::error::AlertingError;
use crate::signature::{sign, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::AlertMessage;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::time::Duration;

/// Where alerts go. Either part may be absent.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    pub webhook: Option<WebhookSettings>,
    pub smtp: Option<SmtpSettings>,
}

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: String,
    /// The shared secret for the HMAC signature.
    pub secret: String,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain (a relay on localhost).
    None,
    /// STARTTLS, required (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub to: Vec<String>,
}

const QUEUE: usize = 1024;
const ATTEMPTS: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(10);

/// Queues alerts for delivery on a background thread.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    sender: Option<SyncSender<AlertMessage>>,
}

impl Dispatcher {
    /// Starts the delivery thread, or a dispatcher that drops everything
    /// when nothing is configured.
    pub fn start(delivery: Delivery) -> Dispatcher {
        if delivery.webhook.is_none() && delivery.smtp.is_none() {
            return Dispatcher { sender: None };
        }
        let (sender, receiver) = sync_channel::<AlertMessage>(QUEUE);
        let spawned = std::thread::Builder::new().name("hearth-alerts".to_owned()).spawn(move || {
            for message in receiver {
                for error in deliver(&delivery, &message) {
                    tracing::error!(%error, alert = message.id, "an alert was not delivered");
                }
            }
        });
        match spawned {
            Ok(_) => Dispatcher { sender: Some(sender) },
            Err(error) => {
                tracing::error!(%error, "the alert delivery thread did not start");
                Dispatcher { sender: None }
            }
        }
    }

    /// Queues `message`; never blocks the caller.
    pub fn send(&self, message: AlertMessage) {
        let Some(sender) = &self.sender else { return };
        match sender.try_send(message) {
            Ok(()) => {}
            Err(TrySendError::Full(message)) => tracing::error!(alert = message.id, "the alert delivery queue is full; this alert is only stored"),
            Err(TrySendError::Disconnected(_)) => tracing::error!("the alert delivery thread has stopped"),
        }
    }
}

/// Delivers one alert to everything configured, with retries; returns the
/// final failures.
pub fn deliver(delivery: &Delivery, message: &AlertMessage) -> Vec<AlertingError> {
    let mut failures = Vec::new();
    if let Some(webhook) = &delivery.webhook
        && let Err(error) = with_retries(|| post_webhook(webhook, message))
    {
        failures.push(error);
    }
    if let Some(smtp) = &delivery.smtp
        && let Err(error) = with_retries(|| send_mail(smtp, message))
    {
        failures.push(error);
    }
    failures
}

fn with_retries(mut attempt: impl FnMut() -> Result<(), AlertingError>) -> Result<(), AlertingError> {
    let mut last = None;
    for n in 0..ATTEMPTS {
        match attempt() {
            Ok(()) => return Ok(()),
            Err(error) => {
                tracing::warn!(%error, attempt = n + 1, "alert delivery failed; retrying");
                last = Some(error);
                std::thread::sleep(Duration::from_millis(500 * 4u64.pow(n)));
            }
        }
    }
    Err(last.unwrap_or_else(|| AlertingError::Webhook("no attempt made".to_owned())))
}

fn post_webhook(webhook: &WebhookSettings, message: &AlertMessage) -> Result<(), AlertingError> {
    let body = serde_json::to_vec(message).map_err(|e| AlertingError::Webhook(e.to_string()))?;
    let timestamp = message.created_ms.div_euclid(1000);
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(TIMEOUT)).build().into();
    agent
        .post(&webhook.url)
        .header("content-type", "application/json")
        .header("user-agent", concat!("hearth/", env!("CARGO_PKG_VERSION")))
        .header(TIMESTAMP_HEADER, &timestamp.to_string())
        .header(SIGNATURE_HEADER, &sign(webhook.secret.as_bytes(), timestamp, &body))
        .send(&body[..])
        .map_err(|e| AlertingError::Webhook(e.to_string()))?;
    Ok(())
}

fn mailbox(text: &str) -> Result<lettre::message::Mailbox, AlertingError> {
    text.parse().map_err(|_| AlertingError::Address(text.to_owned()))
}

fn send_mail(smtp: &SmtpSettings, message: &AlertMessage) -> Result<(), AlertingError> {
    use lettre::Transport;
    let mut builder = lettre::Message::builder().from(mailbox(&smtp.from)?).subject(message.summary());
    for to in &smtp.to {
        builder = builder.to(mailbox(to)?);
    }
    let detail = serde_json::to_string_pretty(&message.detail).unwrap_or_default();
    let text = format!(
        "{}\n\nRule: {} ({})\nSeverity: {}\nCredential: {}\nProject: {}\nAction taken: {}\nAlert id: {}\nTime (ms since 1970, UTC): {}\n\nDetail:\n{detail}\n\nList alerts with `hearth alerts list` or GET /api/v1/alerts; contain with `hearth incident contain`.\n",
        message.summary(),
        message.rule.as_str(),
        message.rule.describe(),
        message.severity.as_str(),
        message.credential,
        message.project.map_or("-".to_owned(), |p| p.to_string()),
        message.action_taken.as_deref().unwrap_or("none"),
        message.id,
        message.created_ms,
    );
    let email = builder.header(lettre::message::header::ContentType::TEXT_PLAIN).body(text).map_err(|e| AlertingError::Mail(e.to_string()))?;
    let builder = match smtp.security {
        SmtpSecurity::None => lettre::SmtpTransport::builder_dangerous(&smtp.host),
        SmtpSecurity::StartTls => lettre::SmtpTransport::starttls_relay(&smtp.host).map_err(|e| AlertingError::Mail(e.to_string()))?,
        SmtpSecurity::Tls => lettre::SmtpTransport::relay(&smtp.host).map_err(|e| AlertingError::Mail(e.to_string()))?,
    };
    let mut builder = builder.port(smtp.port).timeout(Some(TIMEOUT));
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        builder = builder.credentials(lettre::transport::smtp::authentication::Credentials::new(user.clone(), password.clone()));
    }
    builder.build().send(&email).map_err(|e| AlertingError::Mail(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Rule, Severity};
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    fn message() -> AlertMessage {
        AlertMessage {
            id: 7,
            rule: Rule::Canary,
            severity: Severity::Critical,
            credential: "api_key:ci#3".to_owned(),
            project: Some(1),
            action_taken: Some("key disabled".to_owned()),
            detail: serde_json::json!({"via": "export"}),
            created_ms: 1_764_000_000_123,
        }
    }

    /// A real HTTP exchange on a local socket: the request the receiver
    /// gets carries the JSON and a signature that verifies.
    #[test]
    fn the_webhook_posts_signed_json() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let receiver = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                headers.push(line.trim().to_owned());
            }
            let header = |name: &str| headers.iter().find_map(|h| h.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned()));
            let length: usize = header("content-length").unwrap().parse().unwrap();
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            (&stream).write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").unwrap();
            (headers[0].clone(), header(TIMESTAMP_HEADER).unwrap(), header(SIGNATURE_HEADER).unwrap(), body)
        });
        let delivery = Delivery { webhook: Some(WebhookSettings { url, secret: "s3cret".to_owned() }), smtp: None };
        assert!(deliver(&delivery, &message()).is_empty());
        let (request_line, timestamp, signature, body) = receiver.join().unwrap();
        assert_eq!(request_line, "POST /hook HTTP/1.1");
        assert_eq!(timestamp, "1764000000");
        assert!(crate::verify(b"s3cret", 1_764_000_000, &body, &signature));
        let sent: AlertMessage = serde_json::from_slice(&body).unwrap();
        assert_eq!(sent, message());
    }

    #[test]
    fn a_bad_address_is_named() {
        let smtp = SmtpSettings { host: "127.0.0.1".to_owned(), port: 1, security: SmtpSecurity::None, username: None, password: None, from: "not an address".to_owned(), to: vec![] };
        assert!(matches!(send_mail(&smtp, &message()), Err(AlertingError::Address(a)) if a == "not an address"));
    }
}
