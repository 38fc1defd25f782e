//! Channel adapters behind one trait: [`Channel`]. The dispatcher only sees the trait and the
//! [`ChannelError`] predicates; each adapter lives in its own module and is built from config.
//!
//! - [`config`]: [`ChannelConfig`] (the `type = "..."` tables) and [`ChannelConfig::build`].
//! - [`outbox`]: writes messages to files (`.eml` for email, `.json` otherwise).
//! - [`email`]: SMTP via lettre, and [`email::build_message`], the one RFC 5322 builder.
//! - [`webhook`]: signed JSON POSTs (Standard Webhooks).
//! - [`twilio`]: SMS through Twilio's Messages API (or a Twilio-compatible provider).
//! - [`whatsapp`]: WhatsApp Business Cloud API (approved templates, or free-form text inside
//!   the 24-hour customer-service window).
//! - [`ratelimit`]: token buckets per provider account and sender, shared by channel instances.

pub mod build;
pub(crate) mod channel;
pub mod config;
pub mod email;
pub(crate) mod http_util;
pub mod outbox;
pub mod ratelimit;
pub mod smtp_config;
pub mod twilio;
pub mod webhook;
pub mod whatsapp;

#[cfg(test)]
mod testutil;

pub use build::{BuildContext, ChannelBuildError, EnvLookup};
pub use channel::{
    Channel, ChannelError, FailureScope, Outbound, Receipt, SharedChannel, TemplateParam,
    WhatsAppContent, WhatsAppTemplate,
};
pub use config::ChannelConfig;
