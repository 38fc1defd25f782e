//! Twilio callbacks turned into what the service layer records: a status callback into a
//! [`DeliveryReport`], an inbound message into an [`InboundInput`].

use super::{InboundMessage, StatusCallback};
use crate::policy::model::KeywordAction;
use crate::service::{DeliveryReport, InboundInput};

/// Short meanings of common delivery-time Twilio error codes, for the timeline.
pub fn error_text(code: u32) -> &'static str {
    match code {
        30003 => "unreachable destination handset",
        30004 => "message blocked",
        30005 => "unknown destination handset",
        30006 => "landline or unreachable carrier",
        30007 => "carrier filtering",
        30008 => "unknown error",
        30034 => "unregistered US A2P 10DLC number",
        21610 => "recipient unsubscribed (replied STOP)",
        _ => "see https://www.twilio.com/docs/api/errors",
    }
}

/// The receipt a status callback reports.
pub fn delivery_report(cb: &StatusCallback) -> DeliveryReport {
    DeliveryReport {
        provider: "twilio".to_owned(),
        provider_message_id: cb.message_sid.clone(),
        state: cb.status,
        error_code: cb.error_code.map(i64::from),
        error_text: cb.error_code.map(|c| error_text(c).to_owned()),
    }
}

/// The message a debtor sent: SMS, or WhatsApp through Twilio (`From: whatsapp:+57...`), with
/// Twilio's Advanced Opt-Out verdict (`STOP` / `START`) when it gave one.
pub fn inbound_input(msg: &InboundMessage) -> InboundInput {
    let (kind, from) = match msg.from.strip_prefix("whatsapp:") {
        Some(n) => ("whatsapp", n.to_owned()),
        None => ("sms", msg.from.clone()),
    };
    let provider_action = match msg.opt_out_type.as_deref().map(str::to_ascii_uppercase) {
        Some(t) if t == "STOP" => Some(KeywordAction::OptOut),
        Some(t) if t == "START" => Some(KeywordAction::OptIn),
        _ => None,
    };
    InboundInput {
        kind: kind.to_owned(),
        from,
        text: Some(msg.body.clone()),
        provider_message_id: msg.message_sid.clone(),
        provider_action,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(from: &str, opt_out: Option<&str>) -> InboundMessage {
        InboundMessage {
            message_sid: "SM1".into(),
            from: from.into(),
            to: "+15550001111".into(),
            body: "STOP".into(),
            opt_out_type: opt_out.map(str::to_owned),
        }
    }

    #[test]
    fn whatsapp_prefix_and_opt_out_type_are_mapped() {
        let i = inbound_input(&msg("whatsapp:+573001234567", Some("stop")));
        assert_eq!(
            (i.kind.as_str(), i.from.as_str()),
            ("whatsapp", "+573001234567")
        );
        assert_eq!(i.provider_action, Some(KeywordAction::OptOut));
        let i = inbound_input(&msg("+573001234567", Some("HELP")));
        assert_eq!(i.kind, "sms");
        assert_eq!(i.provider_action, None);
        assert_eq!(error_text(30003), "unreachable destination handset");
    }
}
