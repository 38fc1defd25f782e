//! Messages debtors send us (SMS, WhatsApp): logged on their clients' timelines, opening
//! WhatsApp's 24-hour window, acting on opt-out / opt-in keywords, and on replies that matter
//! (`[inbound]`): a debtor saying they already paid pauses their open invoices
//! (`debtor_says_paid`) and opens a review task; other replies open one if the policy says so.

use jiff::Timestamp;

use super::ServiceError;
use super::contacts::{ContactChange, apply_contact_change};
use crate::policy::Policy;
use crate::policy::model::KeywordAction;
use crate::policy::tasks::OtherReplies;
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
    /// The says-paid phrase the message contained, if any (its clients' open invoices were
    /// paused and a review task opened).
    pub says_paid: Option<String>,
}

/// Records an inbound message once per provider message id (a redelivery changes nothing).
pub fn record_inbound(
    store: &Store,
    policy: &Policy,
    input: &InboundInput,
    now: Timestamp,
) -> Result<InboundOutcome, ServiceError> {
    let keywords = &policy.opt_out;
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
                says_paid: None,
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
            super::facts::note_inbound(tx, policy, client, now)?;
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
        let text = input.text.as_deref().unwrap_or("");
        let says_paid = if action.is_none() {
            policy.inbound.says_paid(text)
        } else {
            None
        };
        if action.is_none() && !text.trim().is_empty() {
            for client in &contact.clients {
                match &says_paid {
                    Some(phrase) => super::tasks::debtor_says_paid(
                        tx,
                        policy,
                        client,
                        &input.kind,
                        &contact.address,
                        text,
                        phrase,
                        now,
                    )?,
                    None if policy.inbound.other_replies == OtherReplies::Task => {
                        super::tasks::reply_needs_review(
                            tx,
                            policy,
                            client,
                            &input.kind,
                            &contact.address,
                            text,
                            now,
                        )?
                    }
                    None => {}
                }
            }
        }
        Ok(InboundOutcome {
            duplicate: false,
            action,
            clients: contact.clients.len(),
            says_paid,
        })
    });
    super::flatten(res)
}
