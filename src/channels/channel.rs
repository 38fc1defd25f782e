//! The [`Channel`] trait and what crosses it: the [`Outbound`] message, the [`Receipt`] and the
//! [`ChannelError`] the dispatcher acts on. A leaf: it knows no adapter.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::domain::{ClientId, InvoiceId, ReminderId};

/// A rendered message, ready for a channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// WhatsApp specifics (kind `whatsapp` only): the approved template and whether the
    /// 24-hour customer-service window is open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whatsapp: Option<WhatsAppContent>,
}

/// What a WhatsApp send may use: free-form `text` only while the debtor's 24-hour window is
/// open; otherwise (or when the free-form send is refused with 131047) the approved template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhatsAppContent {
    /// True when the debtor wrote to us less than 24 hours ago (free-form text is allowed).
    pub session_open: bool,
    /// The approved template for this step, with its parameters rendered, if the policy maps one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<WhatsAppTemplate>,
}

/// An approved WhatsApp message template with its parameters filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhatsAppTemplate {
    /// Template name as approved in WhatsApp Manager, e.g. `recordatorio_pago`.
    pub name: String,
    /// Template language code, e.g. `es_MX`.
    pub language: String,
    /// Body parameters, filling `{{1}}..{{n}}` in order.
    pub body: Vec<TemplateParam>,
    /// Parameter of the URL button at index 0 (the dynamic suffix of its URL), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub button_url: Option<String>,
}

/// One rendered template body parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TemplateParam {
    /// `{"type":"text","text":...}`.
    Text {
        /// The text.
        text: String,
    },
    /// `{"type":"currency","currency":{"fallback_value":...,"code":...,"amount_1000":...}}`.
    Currency {
        /// Localised amount shown when the client cannot format it, e.g. `$1.250.000`.
        fallback_value: String,
        /// ISO 4217 code.
        code: String,
        /// Amount times 1000, as WhatsApp wants it.
        amount_1000: i64,
    },
    /// `{"type":"date_time","date_time":{"fallback_value":...}}`.
    DateTime {
        /// Localised date, e.g. `15 de marzo de 2026`.
        fallback_value: String,
    },
}

/// What a channel returns when it accepted a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    /// The provider's id for the message (SMTP Message-ID, Twilio sid, wamid...).
    pub provider_message_id: Option<String>,
    /// What was actually sent when it differs from the plain message (e.g. `template
    /// recordatorio_pago (es_MX)` or `text (24-hour window open)`), for the timeline.
    pub note: Option<String>,
}

/// How far a permanent failure reaches: what else must not be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureScope {
    /// Only this message is bad (template error, body too long): other steps may work.
    #[default]
    Message,
    /// The recipient's address cannot be reached on this channel (invalid number, not a
    /// WhatsApp user): skip this channel for this address from now on.
    Address,
    /// The recipient opted out on this channel (Twilio 21610, WhatsApp 131050): record the
    /// opt-out and never use this channel for this address until they opt back in.
    OptedOut,
    /// The WhatsApp 24-hour customer-service window is closed (131047): only a template may go.
    WindowClosed,
    /// The channel itself is broken (bad credentials, account locked, misconfigured): alert
    /// the operator; other channels may still work.
    Channel,
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
        /// What else the failure rules out.
        scope: FailureScope,
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
    /// A permanent error about this message only.
    pub fn permanent(message: impl Into<String>) -> Self {
        ChannelError::Permanent {
            message: message.into(),
            scope: FailureScope::Message,
        }
    }
    /// A permanent error reaching as far as `scope`.
    pub fn permanent_scoped(scope: FailureScope, message: impl Into<String>) -> Self {
        ChannelError::Permanent {
            message: message.into(),
            scope,
        }
    }
    /// A transient error with the delay the provider asked for.
    pub fn transient_after(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        ChannelError::Transient {
            message: message.into(),
            retry_after,
        }
    }
    /// The scope of a permanent error (`None` for transient ones).
    pub fn scope(&self) -> Option<FailureScope> {
        match self {
            ChannelError::Permanent { scope, .. } => Some(*scope),
            ChannelError::Transient { .. } => None,
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
    /// Adapter type (`outbox`, `smtp`, `twilio`, `whatsapp`, `webhook`).
    fn adapter(&self) -> &'static str;
    /// Delivers one message.
    fn send<'a>(&'a self, msg: &'a Outbound) -> BoxFuture<'a, Result<Receipt, ChannelError>>;
    /// True when the provider reports delivery (status callbacks), so the dispatcher may wait
    /// for a receipt before it considers the step done. Default false.
    fn reports_delivery(&self) -> bool {
        false
    }
    /// The token bucket this channel's sender draws from, if rate-limited.
    fn rate_limiter(&self) -> Option<&super::ratelimit::SharedLimiter> {
        None
    }
}

/// A shared channel handle.
pub type SharedChannel = Arc<dyn Channel>;
