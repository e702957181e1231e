//! Outgoing mail (`[mail]`): the SMTP server password-reset links are sent through, the
//! sender, and the web app's address the links open. Without `smtp_host` no mail is sent.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP (a relay on the same host or network only).
    None,
    /// Plain connection upgraded with `STARTTLS`, which the server must offer (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte ("SMTPS", port 465).
    Tls,
}

impl SmtpTls {
    /// The usual port of the mode.
    pub fn default_port(self) -> u16 {
        match self {
            Self::None => 25,
            Self::Starttls => 587,
            Self::Tls => 465,
        }
    }
}

/// Outgoing mail settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// SMTP server host name (`PLANSCAPE_SMTP_HOST`); unset: no mail is sent.
    #[serde(default)]
    pub smtp_host: Option<String>,
    /// SMTP port (`PLANSCAPE_SMTP_PORT`); by default the TLS mode's usual one.
    #[serde(default)]
    pub smtp_port: Option<u16>,
    /// `none`, `starttls` (default) or `tls` (`PLANSCAPE_SMTP_TLS`).
    #[serde(default)]
    pub smtp_tls: SmtpTls,
    /// SMTP user name (`PLANSCAPE_SMTP_USER`), with the password.
    #[serde(default)]
    pub smtp_user: Option<String>,
    /// SMTP password (`PLANSCAPE_SMTP_PASSWORD` only: refused in a file).
    #[serde(default, skip_serializing)]
    pub smtp_password: Option<String>,
    /// The sender, `address` or `Name <address>` (`PLANSCAPE_MAIL_FROM`).
    #[serde(default)]
    pub from: Option<String>,
    /// The web app's public address that links in mail open, e.g.
    /// `https://planscape.example.org` (`PLANSCAPE_APP_URL`); `public_url` when unset.
    /// Never taken from request headers, which a client chooses.
    #[serde(default)]
    pub app_url: Option<String>,
}

impl MailConfig {
    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.smtp_port
            .unwrap_or_else(|| self.smtp_tls.default_port())
    }

    /// Checks the section; `public_url` is the server's, the links' fallback.
    pub(super) fn validate(&self, public_url: Option<&str>) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: format!("mail.{key}"),
            message,
        };
        if let Some(url) = &self.app_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid(
                "app_url",
                format!("`{url}` must start with http:// or https://"),
            ));
        }
        let Some(host) = &self.smtp_host else {
            return Ok(());
        };
        if host.trim().is_empty() || host.contains(char::is_whitespace) {
            return Err(invalid("smtp_host", "is not a host name".into()));
        }
        if self.smtp_port == Some(0) {
            return Err(invalid("smtp_port", "must be 1 to 65535".into()));
        }
        if self.smtp_user.is_some() != self.smtp_password.is_some() {
            return Err(invalid(
                "smtp_user",
                "set both the user and PLANSCAPE_SMTP_PASSWORD, or neither".into(),
            ));
        }
        match &self.from {
            None => {
                return Err(invalid(
                    "from",
                    "is needed with smtp_host (PLANSCAPE_MAIL_FROM)".into(),
                ));
            }
            Some(from) if from.parse::<lettre::message::Mailbox>().is_err() => {
                return Err(invalid(
                    "from",
                    format!("`{from}` is not `address` or `Name <address>`"),
                ));
            }
            Some(_) => {}
        }
        if self.app_url.is_none() && public_url.is_none() {
            return Err(invalid(
                "app_url",
                "is needed with smtp_host, for the links in mail (PLANSCAPE_APP_URL, or public_url)"
                    .into(),
            ));
        }
        Ok(())
    }
}
