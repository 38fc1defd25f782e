//! WhatsApp webhook events turned into what the service layer records: statuses into
//! [`DeliveryReport`]s, customer messages into [`InboundInput`]s.

use super::WhatsAppEvent;
use crate::service::{DeliveryReport, InboundInput};

/// Receipts and inbound messages of one webhook delivery; unknown items are logged and left
/// out.
pub fn service_inputs(events: Vec<WhatsAppEvent>) -> (Vec<DeliveryReport>, Vec<InboundInput>) {
    let mut reports = Vec::new();
    let mut inbound = Vec::new();
    for ev in events {
        match ev {
            WhatsAppEvent::Status(s) => {
                let first = s.errors.first();
                reports.push(DeliveryReport {
                    provider: "whatsapp".to_owned(),
                    provider_message_id: s.wamid,
                    state: s.status,
                    error_code: first.map(|e| e.code),
                    error_text: first.map(|e| {
                        e.details
                            .clone()
                            .or_else(|| e.message.clone())
                            .unwrap_or_else(|| e.title.clone())
                    }),
                });
            }
            WhatsAppEvent::Message(m) => inbound.push(InboundInput {
                kind: "whatsapp".to_owned(),
                // Meta sends the number without its `+`.
                from: if m.from.starts_with('+') {
                    m.from
                } else {
                    format!("+{}", m.from)
                },
                text: m.text,
                provider_message_id: m.wamid,
                provider_action: None,
            }),
            WhatsAppEvent::Unknown(u) => {
                tracing::debug!(?u, "ignored WhatsApp webhook item");
            }
        }
    }
    (reports, inbound)
}
