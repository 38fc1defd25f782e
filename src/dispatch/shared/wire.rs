//! What crosses the database: the message (the channel's [`Outbound`], JSON, in the `sends`
//! table, readable by an operator looking at it) and its result ([`SendResult`], JSON, in the
//! `plazo_sends_done` notification).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::channels::{ChannelError, FailureScope, Outbound, Receipt};

/// What a node's delivery of a queued message came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum SendResult {
    /// The channel accepted it.
    Sent {
        /// The node that sent it.
        node: String,
        /// The provider's id for the message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider_message_id: Option<String>,
        /// What was actually sent, when it differs from the plain message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// The channel failed; trying again later may work.
    Transient {
        /// The node that tried.
        node: String,
        /// What went wrong.
        message: String,
        /// How long the provider asked to wait, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// The channel refused it for good.
    Permanent {
        /// The node that tried.
        node: String,
        /// What went wrong.
        message: String,
        /// What else the failure rules out.
        scope: FailureScope,
    },
    /// The node that claimed it first died or hung with it (its lease ran out) and
    /// `on_unknown = skip`: it may or may not have gone out, and it is not sent again.
    Unknown {
        /// The node that settled it.
        node: String,
        /// What happened, for the timeline.
        detail: String,
    },
}

/// What the leader makes of a queued message's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// A channel's answer, as if the leader had sent it itself.
    Done(Result<Receipt, ChannelError>),
    /// In doubt: the step ends `unknown` (see [`SendResult::Unknown`]).
    Unknown(String),
}

impl SendResult {
    /// The result of `node`'s send.
    pub fn of(node: &str, outcome: Result<Receipt, ChannelError>) -> SendResult {
        let node = node.to_owned();
        match outcome {
            Ok(r) => SendResult::Sent {
                node,
                provider_message_id: r.provider_message_id,
                note: r.note,
            },
            Err(ChannelError::Transient {
                message,
                retry_after,
            }) => SendResult::Transient {
                node,
                message,
                retry_after_ms: retry_after
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            },
            Err(ChannelError::Permanent { message, scope }) => SendResult::Permanent {
                node,
                message,
                scope,
            },
        }
    }

    /// The leader's view: the node's name goes into the receipt's note or the error, so the
    /// timeline says which node sent.
    pub fn delivered(self) -> Delivered {
        match self {
            SendResult::Sent {
                node,
                provider_message_id,
                note,
            } => Delivered::Done(Ok(Receipt {
                provider_message_id,
                note: Some(match note {
                    Some(n) => format!("{n}; by node {node}"),
                    None => format!("by node {node}"),
                }),
            })),
            SendResult::Transient {
                node,
                message,
                retry_after_ms,
            } => Delivered::Done(Err(ChannelError::transient_after(
                format!("{message} (node {node})"),
                retry_after_ms.map(Duration::from_millis),
            ))),
            SendResult::Permanent {
                node,
                message,
                scope,
            } => Delivered::Done(Err(ChannelError::permanent_scoped(
                scope,
                format!("{message} (node {node})"),
            ))),
            SendResult::Unknown { node, detail } => {
                Delivered::Unknown(format!("{detail} (settled by node {node})"))
            }
        }
    }

    /// Encoded for its notification (JSON). Texts are cut to [`MAX_TEXT`] characters, so the
    /// payload stays well under PostgreSQL's 8,000-byte limit.
    pub fn encode(&self) -> String {
        let mut short = self.clone();
        match &mut short {
            SendResult::Sent {
                node,
                provider_message_id,
                note,
            } => {
                cut(node);
                if let Some(id) = provider_message_id {
                    cut(id);
                }
                if let Some(n) = note {
                    cut(n);
                }
            }
            SendResult::Transient { node, message, .. }
            | SendResult::Permanent { node, message, .. }
            | SendResult::Unknown {
                node,
                detail: message,
            } => {
                cut(node);
                cut(message);
            }
        }
        // A plain enum of strings and numbers: serializing it cannot fail.
        serde_json::to_string(&short).unwrap_or_default()
    }

    /// Decoded from its notification; a result no version of plazo wrote reads as a transient
    /// failure (the reminder is tried again), never as a success.
    pub fn decode(text: &str) -> SendResult {
        serde_json::from_str(text).unwrap_or_else(|e| SendResult::Transient {
            node: "?".into(),
            message: format!("the result in the send queue cannot be read ({e})"),
            retry_after_ms: None,
        })
    }
}

/// The longest text (in characters) a result carries in its notification: a provider's error
/// body is cut there, with an ellipsis.
pub const MAX_TEXT: usize = 1500;

/// Cuts `text` to [`MAX_TEXT`] characters.
fn cut(text: &mut String) {
    if let Some((at, _)) = text.char_indices().nth(MAX_TEXT) {
        text.truncate(at);
        text.push('…');
    }
}

/// A message encoded for the `payload` column.
///
/// # Errors
///
/// Never in practice (the message is plain data); the error is reported as the send's failure.
pub fn encode_message(msg: &Outbound) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(msg)
}

/// A message decoded from the `payload` column.
///
/// # Errors
///
/// When the payload is not a message this version of plazo reads (nodes of different versions).
pub fn decode_message(bytes: &[u8]) -> Result<Outbound, serde_json::Error> {
    serde_json::from_slice(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_result_crosses_the_table_and_names_its_node() {
        let sent = SendResult::of(
            "b",
            Ok(Receipt {
                provider_message_id: Some("SM1".into()),
                note: None,
            }),
        );
        let back = SendResult::decode(&sent.encode());
        assert_eq!(back, sent);
        assert_eq!(
            back.delivered(),
            Delivered::Done(Ok(Receipt {
                provider_message_id: Some("SM1".into()),
                note: Some("by node b".into()),
            }))
        );
        let slow = SendResult::of(
            "c",
            Err(ChannelError::transient_after(
                "429",
                Some(Duration::from_secs(2)),
            )),
        );
        match SendResult::decode(&slow.encode()).delivered() {
            Delivered::Done(Err(e)) => {
                assert!(e.is_transient());
                assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
                assert!(e.to_string().contains("(node c)"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        let opted_out = SendResult::of(
            "c",
            Err(ChannelError::permanent_scoped(
                FailureScope::OptedOut,
                "21610",
            )),
        );
        match SendResult::decode(&opted_out.encode()).delivered() {
            Delivered::Done(Err(e)) => assert_eq!(e.scope(), Some(FailureScope::OptedOut)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_long_provider_error_is_cut_to_fit_a_notification() {
        let long = SendResult::of("b", Err(ChannelError::permanent("é".repeat(10_000))));
        let text = long.encode();
        assert!(text.len() < 4000, "{}", text.len());
        match SendResult::decode(&text) {
            SendResult::Permanent { message, .. } => {
                assert_eq!(message.chars().count(), MAX_TEXT + 1);
                assert!(message.ends_with('…'));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unreadable_result_is_a_transient_failure_never_a_success() {
        match SendResult::decode("{\"result\":\"sent\"").delivered() {
            Delivered::Done(Err(e)) => assert!(e.is_transient(), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}
