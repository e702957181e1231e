//! Outgoing mail over SMTP (lettre on tokio, rustls with the system's CA certificates):
//! one connection per message, plain text.

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{MailConfig, SmtpTls};

/// A mail that could not be built or sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The settings do not describe a usable server or sender.
    #[error("mail settings: {0}")]
    Config(String),
    /// The recipient or message is not acceptable.
    #[error("message: {0}")]
    Message(String),
    /// The SMTP server could not be reached or refused the message.
    #[error("smtp: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

/// Sends mail through the configured SMTP server.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

impl Mailer {
    /// A mailer for the settings, or `None` when no SMTP server is configured.
    pub fn from_config(config: &MailConfig) -> Result<Option<Self>, MailError> {
        let Some(host) = &config.smtp_host else {
            return Ok(None);
        };
        let from = config
            .from
            .as_deref()
            .ok_or_else(|| MailError::Config("mail.from is not set".into()))?
            .parse::<Mailbox>()
            .map_err(|e| MailError::Config(format!("mail.from: {e}")))?;
        let builder = match config.smtp_tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
        };
        let mut builder = builder.port(config.port());
        if let (Some(user), Some(password)) = (&config.smtp_user, &config.smtp_password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Some(Self {
            transport: builder.build(),
            from,
        }))
    }

    /// Sends a plain-text message to `to` (an address).
    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), MailError> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| MailError::Message(format!("recipient: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| MailError::Message(e.to_string()))?;
        self.transport.send(message).await?;
        Ok(())
    }
}
