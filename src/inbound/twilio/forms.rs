//! The forms Twilio POSTs: `application/x-www-form-urlencoded` parsing, delivery reports
//! (status callbacks) and inbound messages.
//!
//! Twilio adds fields without notice, so unknown fields are ignored; a field sent twice is
//! read from its first occurrence (the signature still covers all of them).

use crate::domain::DeliveryState;

/// Why a Twilio form could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwilioParseError {
    /// A name or value is not UTF-8 once percent-decoded.
    #[error(
        "form field {field:?} is not valid UTF-8 once percent-decoded; Twilio sends UTF-8 \
         application/x-www-form-urlencoded bodies: check what is calling this URL"
    )]
    NotUtf8 {
        /// The field's name (lossily decoded).
        field: String,
    },
    /// A required field is missing or empty.
    #[error(
        "required field {0} is missing from the Twilio request; check that this URL is set as \
         the right webhook (status callback vs incoming message) in Twilio"
    )]
    MissingField(&'static str),
    /// `MessageStatus` has a value we do not know.
    #[error(
        "unknown MessageStatus {0:?}; expected queued, accepted, scheduled, sending, sent, \
         delivered, read, undelivered, failed or canceled"
    )]
    UnknownStatus(String),
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `+` as space and `%XX` as a byte; a `%` not followed by two hex digits is kept.
fn decode(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        let escaped = match (b, raw.get(i + 1), raw.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) => hex_value(h).zip(hex_value(l)),
            _ => None,
        };
        match (b, escaped) {
            (_, Some((h, l))) => {
                out.push(h << 4 | l);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Parses an `application/x-www-form-urlencoded` body into `(name, value)` pairs, in order,
/// duplicates kept (`+` is a space; a name without `=` has an empty value; empty pieces
/// between `&`s are skipped). Fails if a name or value is not UTF-8.
pub fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, TwilioParseError> {
    let mut out = Vec::new();
    for piece in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (k, v) = match piece.iter().position(|b| *b == b'=') {
            Some(i) => (&piece[..i], &piece[i + 1..]),
            None => (piece, &[][..]),
        };
        let k = decode(k);
        let name = match String::from_utf8(k) {
            Ok(n) => n,
            Err(e) => {
                return Err(TwilioParseError::NotUtf8 {
                    field: String::from_utf8_lossy(e.as_bytes()).into_owned(),
                });
            }
        };
        let value = String::from_utf8(decode(v)).map_err(|_| TwilioParseError::NotUtf8 {
            field: name.clone(),
        })?;
        out.push((name, value));
    }
    Ok(out)
}

/// The first non-empty value of the first of `names` present.
fn field<'a>(params: &'a [(String, String)], names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| {
        params
            .iter()
            .find(|(k, v)| k == n && !v.trim().is_empty())
            .map(|(_, v)| v.trim())
    })
}

fn required(
    params: &[(String, String)],
    names: &[&str],
    report: &'static str,
) -> Result<String, TwilioParseError> {
    field(params, names)
        .map(str::to_owned)
        .ok_or(TwilioParseError::MissingField(report))
}

/// The delivery state of a Twilio message status (case-insensitive): `queued`, `accepted`,
/// `scheduled`, `sending` → accepted; `sent`; `delivered`; `read`; `undelivered`; `failed` and
/// `canceled` → failed. `None` for any other (e.g. `receiving`, `partially_delivered`).
pub fn delivery_state(status: &str) -> Option<DeliveryState> {
    Some(match status.trim().to_ascii_lowercase().as_str() {
        "queued" | "accepted" | "scheduled" | "sending" => DeliveryState::Accepted,
        "sent" => DeliveryState::Sent,
        "delivered" => DeliveryState::Delivered,
        "read" => DeliveryState::Read,
        "undelivered" => DeliveryState::Undelivered,
        "failed" | "canceled" => DeliveryState::Failed,
        _ => return None,
    })
}

/// A delivery report POSTed to the message's `StatusCallback`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCallback {
    /// The message's sid (`MessageSid`, else `SmsSid`): the receipt's provider id.
    pub message_sid: String,
    /// The state reached.
    pub status: DeliveryState,
    /// Twilio's status as sent (`MessageStatus`, else `SmsStatus`), e.g. `undelivered`.
    pub raw_status: String,
    /// Twilio's `ErrorCode` (on `failed`/`undelivered`), e.g. 30003 (unreachable handset);
    /// `None` when absent or not a number.
    pub error_code: Option<u32>,
    /// `AccountSid`: compare with the channel's account.
    pub account_sid: Option<String>,
    /// `From`: the sender.
    pub from: Option<String>,
    /// `To`: the recipient.
    pub to: Option<String>,
}

impl StatusCallback {
    /// Reads a status callback from its form fields (unknown fields ignored).
    pub fn from_params(params: &[(String, String)]) -> Result<Self, TwilioParseError> {
        let message_sid = required(params, &["MessageSid", "SmsSid"], "MessageSid")?;
        let raw_status = required(params, &["MessageStatus", "SmsStatus"], "MessageStatus")?;
        let status = delivery_state(&raw_status)
            .ok_or_else(|| TwilioParseError::UnknownStatus(raw_status.clone()))?;
        let opt = |name: &str| field(params, &[name]).map(str::to_owned);
        Ok(StatusCallback {
            message_sid,
            status,
            raw_status,
            error_code: field(params, &["ErrorCode"]).and_then(|c| c.parse().ok()),
            account_sid: opt("AccountSid"),
            from: opt("From"),
            to: opt("To"),
        })
    }
}

/// What a single-word inbound message asks for, under Twilio's default keyword handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwilioKeyword {
    /// `STOP`, `STOPALL`, `UNSUBSCRIBE`, `CANCEL`, `END`, `QUIT` (also `REVOKE`, `OPTOUT`), or
    /// `OptOutType=STOP`: Twilio now blocks this sender for this number.
    OptOut,
    /// `START`, `YES`, `UNSTOP`, or `OptOutType=START`: the number opted back in.
    OptIn,
    /// `HELP`, `INFO`, or `OptOutType=HELP`.
    Help,
}

/// A message a debtor sent to one of our numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// `MessageSid` (else `SmsMessageSid`, `SmsSid`).
    pub message_sid: String,
    /// `From`: who wrote, E.164.
    pub from: String,
    /// `To`: our number that received it.
    pub to: String,
    /// `Body`: the text (may be empty, e.g. a picture only).
    pub body: String,
    /// `OptOutType` (`STOP`, `START` or `HELP`), sent when the Messaging Service has Advanced
    /// Opt-Out on and the message matched one of its keywords.
    pub opt_out_type: Option<String>,
}

impl InboundMessage {
    /// Reads an inbound message from its form fields (unknown fields ignored).
    pub fn from_params(params: &[(String, String)]) -> Result<Self, TwilioParseError> {
        Ok(InboundMessage {
            message_sid: required(
                params,
                &["MessageSid", "SmsMessageSid", "SmsSid"],
                "MessageSid",
            )?,
            from: required(params, &["From"], "From")?,
            to: required(params, &["To"], "To")?,
            body: params
                .iter()
                .find(|(k, _)| k == "Body")
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
            opt_out_type: field(params, &["OptOutType"]).map(str::to_owned),
        })
    }

    /// The opt-out, opt-in or help request this message makes: from `OptOutType` when Twilio
    /// sent it, else when the whole body is one of Twilio's default keywords (any case; a
    /// longer message such as "STOP PLEASE" is not a keyword, as for Twilio).
    pub fn keyword(&self) -> Option<TwilioKeyword> {
        if let Some(t) = &self.opt_out_type {
            return match t.to_ascii_uppercase().as_str() {
                "STOP" => Some(TwilioKeyword::OptOut),
                "START" => Some(TwilioKeyword::OptIn),
                "HELP" => Some(TwilioKeyword::Help),
                _ => None,
            };
        }
        match self.body.trim().to_uppercase().as_str() {
            "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" | "REVOKE"
            | "OPTOUT" => Some(TwilioKeyword::OptOut),
            "START" | "YES" | "UNSTOP" => Some(TwilioKeyword::OptIn),
            "HELP" | "INFO" => Some(TwilioKeyword::Help),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parse_form_decodes_and_keeps_duplicates() {
        let body = b"To=%2B14155552345&Body=Hola+se%C3%B1or%2C+50%E2%82%AC+%F0%9F%91%8D\
                     &Digits=1&Digits=2&Empty=&Flag&&Pct=100%&Bad=%zz";
        let p = parse_form(body).unwrap();
        assert_eq!(
            p,
            pairs(&[
                ("To", "+14155552345"),
                ("Body", "Hola señor, 50€ 👍"),
                ("Digits", "1"),
                ("Digits", "2"),
                ("Empty", ""),
                ("Flag", ""),
                ("Pct", "100%"),
                ("Bad", "%zz"),
            ])
        );
        assert_eq!(parse_form(b"").unwrap(), vec![]);
        // A value with '=' in it keeps everything after the first '='.
        assert_eq!(parse_form(b"a=b=c").unwrap(), pairs(&[("a", "b=c")]));
        // Agrees with the url crate's parser on valid input.
        let reference: Vec<(String, String)> = form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(p, reference);
    }

    #[test]
    fn parse_form_rejects_invalid_utf8() {
        let e = parse_form(b"Body=%C3%28&To=x").unwrap_err();
        assert_eq!(
            e,
            TwilioParseError::NotUtf8 {
                field: "Body".to_owned()
            }
        );
        assert!(e.to_string().contains("UTF-8"), "{e}");
        assert!(matches!(
            parse_form(b"%FF=1"),
            Err(TwilioParseError::NotUtf8 { .. })
        ));
    }

    /// A status callback as Twilio's guide shows it, plus fields we do not know.
    fn callback(status: &str) -> Vec<(String, String)> {
        pairs(&[
            ("ApiVersion", "2010-04-01"),
            ("MessageStatus", status),
            ("SmsSid", "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            ("SmsStatus", status),
            ("To", "+15558675310"),
            ("From", "+15017122661"),
            ("MessageSid", "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            ("AccountSid", "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            ("RawDlrDoneDate", "2603031530"),
            ("SomethingNew", "x"),
        ])
    }

    #[test]
    fn status_callback_maps_every_status() {
        use DeliveryState::*;
        for (raw, state) in [
            ("queued", Accepted),
            ("accepted", Accepted),
            ("scheduled", Accepted),
            ("sending", Accepted),
            ("sent", Sent),
            ("delivered", Delivered),
            ("read", Read),
            ("undelivered", Undelivered),
            ("failed", Failed),
            ("canceled", Failed),
        ] {
            let cb = StatusCallback::from_params(&callback(raw)).unwrap();
            assert_eq!(cb.status, state, "{raw}");
            assert_eq!(cb.raw_status, raw);
        }
        let cb = StatusCallback::from_params(&callback("delivered")).unwrap();
        assert_eq!(
            cb,
            StatusCallback {
                message_sid: "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_owned(),
                status: DeliveryState::Delivered,
                raw_status: "delivered".to_owned(),
                error_code: None,
                account_sid: Some("ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_owned()),
                from: Some("+15017122661".to_owned()),
                to: Some("+15558675310".to_owned()),
            }
        );
    }

    #[test]
    fn status_callback_error_code_and_legacy_fields() {
        let mut p = callback("undelivered");
        p.push(("ErrorCode".to_owned(), "30003".to_owned()));
        let cb = StatusCallback::from_params(&p).unwrap();
        assert_eq!(
            (cb.status, cb.error_code),
            (DeliveryState::Undelivered, Some(30003))
        );
        // Only the legacy names.
        let p = pairs(&[("SmsSid", "SM1"), ("SmsStatus", "sent"), ("ErrorCode", "")]);
        let cb = StatusCallback::from_params(&p).unwrap();
        assert_eq!(
            (cb.message_sid.as_str(), cb.status, cb.error_code),
            ("SM1", DeliveryState::Sent, None)
        );
        assert_eq!((cb.account_sid, cb.from, cb.to), (None, None, None));
    }

    #[test]
    fn status_callback_errors_name_the_problem() {
        let e = StatusCallback::from_params(&callback("partially_delivered")).unwrap_err();
        assert_eq!(
            e,
            TwilioParseError::UnknownStatus("partially_delivered".to_owned())
        );
        assert!(e.to_string().contains("partially_delivered"), "{e}");
        let e = StatusCallback::from_params(&pairs(&[("MessageStatus", "sent")])).unwrap_err();
        assert_eq!(e, TwilioParseError::MissingField("MessageSid"));
        let e = StatusCallback::from_params(&pairs(&[("MessageSid", "SM1")])).unwrap_err();
        assert_eq!(e, TwilioParseError::MissingField("MessageStatus"));
        assert!(e.to_string().contains("MessageStatus"), "{e}");
    }

    #[test]
    fn inbound_message_and_keywords() {
        let body = b"ToCountry=US&SmsMessageSid=SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb&NumMedia=0\
                     &SmsSid=SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb&SmsStatus=received\
                     &Body=Ya+pagu%C3%A9%2C+gracias&To=%2B15005550006&NumSegments=1\
                     &MessageSid=SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\
                     &AccountSid=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&From=%2B573001234567\
                     &ApiVersion=2010-04-01";
        let m = InboundMessage::from_params(&parse_form(body).unwrap()).unwrap();
        assert_eq!(
            m,
            InboundMessage {
                message_sid: "SMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".to_owned(),
                from: "+573001234567".to_owned(),
                to: "+15005550006".to_owned(),
                body: "Ya pagué, gracias".to_owned(),
                opt_out_type: None,
            }
        );
        assert_eq!(m.keyword(), None);

        let msg = |body: &str, opt: Option<&str>| {
            let mut p = pairs(&[
                ("SmsMessageSid", "SM1"),
                ("From", "+573001234567"),
                ("To", "+15005550006"),
                ("Body", body),
            ]);
            if let Some(o) = opt {
                p.push(("OptOutType".to_owned(), o.to_owned()));
            }
            InboundMessage::from_params(&p).unwrap()
        };
        assert_eq!(msg("stop", None).keyword(), Some(TwilioKeyword::OptOut));
        assert_eq!(msg(" Quit\n", None).keyword(), Some(TwilioKeyword::OptOut));
        assert_eq!(msg("STOP PLEASE", None).keyword(), None);
        assert_eq!(msg("unstop", None).keyword(), Some(TwilioKeyword::OptIn));
        assert_eq!(msg("info", None).keyword(), Some(TwilioKeyword::Help));
        // A custom keyword under Advanced Opt-Out.
        assert_eq!(
            msg("BAJA", Some("STOP")).keyword(),
            Some(TwilioKeyword::OptOut)
        );
        assert_eq!(
            msg("stop", Some("START")).keyword(),
            Some(TwilioKeyword::OptIn)
        );
        assert_eq!(msg("", None).body, "");

        let e = InboundMessage::from_params(&pairs(&[("MessageSid", "SM1"), ("To", "+1")]))
            .unwrap_err();
        assert_eq!(e, TwilioParseError::MissingField("From"));
    }
}
