//! Messages debtors send us (SMS, WhatsApp): logged on their clients' timelines, opening
//! WhatsApp's 24-hour window, and acting on opt-out / opt-in keywords.

use jiff::Timestamp;

use super::ServiceError;
use super::contacts::{ContactChange, apply_contact_change};
use crate::policy::model::{KeywordAction, OptOutKeywords};
use crate::store::{Store, TxError};

/// One inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundInput {
    /// Channel kind it came on (`sms`, `whatsapp`).
    pub kind: String,
    /// Sender in E.164 (`+573001234567`).
    pub from: String,
    /// The text, if any.
    pub text: Option<String>,
    /// The provider's message id (used to ignore redeliveries).
    pub provider_message_id: String,
    /// A keyword decision the provider already made (Twilio Advanced Opt-Out's `OptOutType`).
    pub provider_action: Option<KeywordAction>,
}

/// What an inbound message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundOutcome {
    /// Already processed (a redelivery): nothing changed.
    pub duplicate: bool,
    /// The keyword action taken, if any.
    pub action: Option<KeywordAction>,
    /// How many clients use the sender's number (their timelines got the message).
    pub clients: usize,
}

/// Records an inbound message once per provider message id.
pub fn record_inbound(
    store: &Store,
    keywords: &OptOutKeywords,
    input: &InboundInput,
    now: Timestamp,
) -> Result<InboundOutcome, ServiceError> {
    let dedupe_key = format!("inbound:{}:{}", input.kind, input.provider_message_id);
    let action = input
        .provider_action
        .or_else(|| input.text.as_deref().and_then(|t| keywords.classify(t)));
    let res = store.transaction(|tx| -> Result<InboundOutcome, TxError<ServiceError>> {
        if tx.webhook_seen(&dedupe_key)? {
            return Ok(InboundOutcome {
                duplicate: true,
                action: None,
                clients: 0,
            });
        }
        tx.mark_webhook(&dedupe_key, now)?;
        let contact = apply_contact_change(
            tx,
            &input.from,
            &ContactChange::Inbound {
                kind: input.kind.clone(),
                text: input.text.clone(),
                provider_message_id: Some(input.provider_message_id.clone()),
            },
            now,
        )?;
        for client in &contact.clients {
            super::facts::note_inbound(tx, client, now)?;
        }
        let word = input.text.as_deref().unwrap_or("").trim();
        match action {
            Some(KeywordAction::OptOut) => {
                apply_contact_change(
                    tx,
                    &input.from,
                    &ContactChange::OptOut {
                        kind: input.kind.clone(),
                        source: format!("keyword {word:?} via {}", input.kind),
                    },
                    now,
                )?;
            }
            Some(KeywordAction::OptIn) => {
                apply_contact_change(
                    tx,
                    &input.from,
                    &ContactChange::OptIn {
                        kind: input.kind.clone(),
                        source: format!("keyword {word:?} via {}", input.kind),
                    },
                    now,
                )?;
            }
            None => {}
        }
        Ok(InboundOutcome {
            duplicate: false,
            action,
            clients: contact.clients.len(),
        })
    });
    super::flatten(res)
}
