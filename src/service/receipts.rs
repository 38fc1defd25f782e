//! Delivery receipts (Twilio status callbacks, WhatsApp statuses): the message's state moves
//! forward only; a failure falls back to the step's next channel (once); a delivery closes a
//! step that was waiting for it.

use jiff::Timestamp;

use super::ServiceError;
use super::contacts::{ContactChange, apply_contact_change};
use super::planning::advance_past;
use crate::domain::{Attempt, AttemptOutcome, DeliveryState, ReminderState};
use crate::policy::Policy;
use crate::store::{Store, TxError};

/// One receipt, whichever provider sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Adapter name (`twilio`, `whatsapp`).
    pub provider: String,
    /// The provider's message id.
    pub provider_message_id: String,
    /// The state reported.
    pub state: DeliveryState,
    /// The provider's error code, on failures.
    pub error_code: Option<i64>,
    /// The provider's error text, on failures.
    pub error_text: Option<String>,
}

/// What a receipt changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptOutcome {
    /// No message with this id was sent by plazo (or it was forgotten): nothing changed.
    UnknownMessage,
    /// A duplicate or an older state than the one recorded: nothing changed.
    NotNewer,
    /// The new state was recorded on the message and the timeline.
    Recorded,
    /// The failure moved the step to its next channel, due now.
    FellBack,
    /// The delivery closed a step that was waiting for it; the next step is planned.
    StepDone,
}

impl ReceiptOutcome {
    /// True when the dispatcher has something new to look at.
    pub fn schedules(&self) -> bool {
        matches!(self, ReceiptOutcome::FellBack | ReceiptOutcome::StepDone)
    }
}

/// What a delivery failure teaches about the address, by provider error code.
pub fn failure_change(
    provider: &str,
    kind: &str,
    code: Option<i64>,
    text: &str,
) -> Option<ContactChange> {
    let reason = || format!("{provider} error {}: {text}", code.unwrap_or_default());
    match (provider, code?) {
        // Recipient replied STOP (Twilio) / stopped marketing messages (WhatsApp).
        ("twilio", 21610) | ("whatsapp", 131050) => Some(ContactChange::OptOut {
            kind: kind.to_owned(),
            source: reason(),
        }),
        // Unreachable / unknown handset / landline; not a WhatsApp user.
        ("twilio", 30003 | 30005 | 30006 | 21211 | 21614) | ("whatsapp", 131026) => {
            Some(ContactChange::Unreachable {
                kind: kind.to_owned(),
                reason: reason(),
            })
        }
        _ => None,
    }
}

/// Applies a receipt in one transaction. See [`ReceiptOutcome`].
pub fn apply_receipt(
    store: &Store,
    policy: &Policy,
    report: &DeliveryReport,
    now: Timestamp,
) -> Result<ReceiptOutcome, ServiceError> {
    let res = store.transaction(|tx| -> Result<ReceiptOutcome, TxError<ServiceError>> {
        let Some(mut msg) = tx.sent_message(&report.provider, &report.provider_message_id)? else {
            return Ok(ReceiptOutcome::UnknownMessage);
        };
        // States only move forward; a failure is final (a `read` cannot follow it).
        if report.state.rank() <= msg.state.rank() || msg.state.is_failure() {
            return Ok(ReceiptOutcome::NotNewer);
        }
        msg.state = report.state;
        msg.updated_at = now;
        let error =
            report
                .state
                .is_failure()
                .then(|| match (report.error_code, &report.error_text) {
                    (Some(c), Some(t)) => format!("error {c}: {t}"),
                    (Some(c), None) => format!("error {c}"),
                    (None, Some(t)) => t.clone(),
                    (None, None) => "no reason given".to_owned(),
                });
        if error.is_some() {
            msg.error = error.clone();
        }
        tx.put_sent_message(&msg)?;
        let mut detail = format!("{} reports {}", msg.provider, report.state.as_str());
        if let Some(e) = &error {
            detail.push_str(&format!(" ({e})"));
        }
        let mut receipt_line = Attempt {
            at: now,
            invoice_id: msg.invoice_id.clone(),
            reminder_id: Some(msg.reminder_id),
            step: Some(msg.step.clone()),
            channel: Some(msg.kind.clone()),
            recipient: Some(msg.recipient.clone()),
            outcome: AttemptOutcome::Receipt,
            provider_message_id: Some(msg.provider_message_id.clone()),
            delivery: Some(report.state),
            detail: None,
        };
        if report.state.is_failure() {
            if let Some(change) = failure_change(
                &msg.provider,
                &msg.kind,
                report.error_code,
                report.error_text.as_deref().unwrap_or(""),
            ) {
                apply_contact_change(tx, &msg.recipient, &change, now)?;
            }
        }
        // Is the step still waiting on this very message?
        let reminder = tx.reminder(&msg.invoice_id, &msg.reminder_id)?;
        let waiting = reminder.filter(|r| {
            r.state == ReminderState::AwaitingReceipt
                && r.awaiting.as_ref().is_some_and(|a| {
                    a.provider == msg.provider && a.provider_message_id == msg.provider_message_id
                })
        });
        let Some(mut r) = waiting else {
            receipt_line.detail = Some(detail);
            tx.log(&receipt_line)?;
            return Ok(ReceiptOutcome::Recorded);
        };
        if report.state.is_failure() {
            detail.push_str("; falling back to the step's next channel");
            receipt_line.detail = Some(detail);
            tx.log(&receipt_line)?;
            tx.unschedule(&r)?;
            let aw = r.awaiting.take();
            r.channel_index = aw.map_or(r.channel_index, |a| a.channel_index) + 1;
            r.attempts = 0;
            r.rate_slot = None;
            r.state = ReminderState::Scheduled;
            r.fire_at = now;
            r.last_error = msg.error.clone();
            tx.schedule(&r)?;
            Ok(ReceiptOutcome::FellBack)
        } else if report.state.is_delivered() {
            detail.push_str("; step done");
            receipt_line.detail = Some(detail);
            tx.log(&receipt_line)?;
            tx.unschedule(&r)?;
            r.awaiting = None;
            r.state = ReminderState::Sent;
            tx.finish(&r)?;
            advance_past(tx, &r, policy, now)?;
            Ok(ReceiptOutcome::StepDone)
        } else {
            receipt_line.detail = Some(detail);
            tx.log(&receipt_line)?;
            Ok(ReceiptOutcome::Recorded)
        }
    });
    super::flatten(res)
}
