//! The body of a Standard Webhooks payment event (`POST /webhooks/payments`), after its
//! signature was verified: `invoice.paid` and `payment.succeeded` become a payment to record;
//! other event types are acknowledged and ignored.

use serde::Deserialize;
use serde_json::Value;

use crate::domain::InvoiceId;
use crate::service::PaymentInput;

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentData {
    invoice_id: String,
    #[serde(default)]
    amount: Option<String>,
    currency: String,
    reference: String,
    #[serde(default)]
    paid_at: Option<jiff::Timestamp>,
}

/// What a payment event asks for.
#[derive(Debug)]
pub enum PaymentEvent {
    /// An event type plazo does not handle (acknowledge it, change nothing).
    Ignored {
        /// The event's `type`.
        kind: String,
    },
    /// A payment on an invoice.
    Paid {
        /// The invoice paid.
        invoice_id: InvoiceId,
        /// The payment.
        input: PaymentInput,
    },
}

/// Why a payment event body was refused.
#[derive(Debug, thiserror::Error)]
pub enum PaymentEventError {
    /// The body is not the JSON envelope `{type, data}`.
    #[error("request body, line {line} column {column}: {0}", line = .0.line(), column = .0.column())]
    Envelope(serde_json::Error),
    /// `data` of a handled event type is not a payment.
    #[error("data: {0}; expected {{invoice_id, amount, currency, reference}}")]
    Data(serde_json::Error),
    /// `data.invoice_id` is not a valid invoice id.
    #[error("{0}")]
    InvoiceId(String),
}

impl PaymentEventError {
    /// Whether the body is not even JSON (as opposed to JSON of the wrong shape).
    pub fn is_malformed_json(&self) -> bool {
        matches!(self, PaymentEventError::Envelope(e) if e.is_syntax() || e.is_eof())
    }
}

/// Parses a verified payment event body.
pub fn parse_payment_event(body: &[u8]) -> Result<PaymentEvent, PaymentEventError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(PaymentEventError::Envelope)?;
    if !matches!(envelope.kind.as_str(), "invoice.paid" | "payment.succeeded") {
        return Ok(PaymentEvent::Ignored {
            kind: envelope.kind,
        });
    }
    let data: PaymentData =
        serde_json::from_value(envelope.data).map_err(PaymentEventError::Data)?;
    let invoice_id =
        InvoiceId::new(data.invoice_id).map_err(|e| PaymentEventError::InvoiceId(e.to_string()))?;
    Ok(PaymentEvent::Paid {
        invoice_id,
        input: PaymentInput {
            amount: data.amount,
            currency: data.currency,
            paid_at: data.paid_at,
            reference: data.reference,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handled_ignored_and_bad_events() {
        let paid = br#"{"type":"invoice.paid","data":{"invoice_id":"inv-1","amount":"10","currency":"COP","reference":"r1"}}"#;
        assert!(matches!(
            parse_payment_event(paid),
            Ok(PaymentEvent::Paid { .. })
        ));
        let other = br#"{"type":"customer.created","data":{}}"#;
        assert!(matches!(
            parse_payment_event(other),
            Ok(PaymentEvent::Ignored { .. })
        ));
        let e = parse_payment_event(b"{").unwrap_err();
        assert!(e.is_malformed_json());
        let e = parse_payment_event(br#"{"type":"invoice.paid","data":{"x":1}}"#).unwrap_err();
        assert!(matches!(e, PaymentEventError::Data(_)));
        assert!(!e.is_malformed_json());
    }
}
