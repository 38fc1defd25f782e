//! Channel adapters behind one trait: [`Channel`]. The dispatcher only sees the trait and the
//! [`ChannelError`] predicates; each adapter lives in its own module and is built from config.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;

use crate::domain::{ClientId, InvoiceId, ReminderId};

/// A rendered message, ready for a channel.
#[derive(Debug, Clone, Serialize)]
pub struct Outbound {
    /// The reminder this message carries (stable across retries: use it for idempotency keys).
    pub reminder_id: ReminderId,
    /// The invoice chased.
    pub invoice_id: InvoiceId,
    /// The debtor.
    pub client_id: ClientId,
    /// Channel kind requested by the step (`email`, `sms`, `whatsapp`, `webhook`).
    pub kind: String,
    /// Recipient address for that kind (email address, E.164 phone, or client id for webhooks).
    pub to: String,
    /// Recipient's display name.
    pub to_name: String,
    /// Subject (email only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Plain-text body.
    pub text: String,
    /// HTML body (email only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// Step name.
    pub step: String,
    /// Tone label of the step.
    pub tone: String,
    /// Locale the message was rendered in.
    pub locale: String,
    /// One-click unsubscribe URL, when the deployment has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsubscribe_url: Option<String>,
}

/// What a channel returns when it accepted a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    /// The provider's id for the message (SMTP Message-ID, Twilio sid, wamid...).
    pub provider_message_id: Option<String>,
}

/// Why a send failed, and whether trying again could help.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ChannelError {
    /// Worth retrying later (timeouts, 5xx, 429, connection refused).
    #[error("transient: {message}")]
    Transient {
        /// What went wrong.
        message: String,
        /// How long the provider asked us to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// Retrying the same message on this channel will not help (bad address, rejected, 4xx).
    #[error("permanent: {message}")]
    Permanent {
        /// What went wrong.
        message: String,
    },
}

impl ChannelError {
    /// A transient error without a provider-specified delay.
    pub fn transient(message: impl Into<String>) -> Self {
        ChannelError::Transient {
            message: message.into(),
            retry_after: None,
        }
    }
    /// A permanent error.
    pub fn permanent(message: impl Into<String>) -> Self {
        ChannelError::Permanent {
            message: message.into(),
        }
    }
    /// True if retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ChannelError::Transient { .. })
    }
    /// True if retrying will not help on this channel.
    pub fn is_permanent(&self) -> bool {
        matches!(self, ChannelError::Permanent { .. })
    }
    /// Delay the provider asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ChannelError::Transient { retry_after, .. } => *retry_after,
            ChannelError::Permanent { .. } => None,
        }
    }
}

/// A way to deliver messages.
pub trait Channel: Send + Sync + 'static {
    /// Instance name from the config (`outbox`, `smtp-main`).
    fn name(&self) -> &str;
    /// Adapter type (`outbox`, `smtp`, `webhook`).
    fn adapter(&self) -> &'static str;
    /// Delivers one message.
    fn send<'a>(&'a self, msg: &'a Outbound) -> BoxFuture<'a, Result<Receipt, ChannelError>>;
}

/// A shared channel handle.
pub type SharedChannel = Arc<dyn Channel>;
