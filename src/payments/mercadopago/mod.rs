//! Mercado Pago: the signed notification, the payment fetch, and the normalised event.
//!
//! A webhook notification arrives as `POST <notification_url>?data.id=<id>&type=payment` with a
//! small JSON body (`action`, `type`, `data.id`, `id`) and the `x-signature` / `x-request-id`
//! headers. Handling one takes four steps:
//!
//! 1. [`verify`] the signature over the raw query's `data.id`, `x-request-id` and `ts`
//!    (module `signature`);
//! 2. [`Notification::parse`] the query and body; notifications that are not about a payment
//!    ([`Notification::is_payment`]) are acknowledged and ignored;
//! 3. after answering (Mercado Pago wants 200/201 within 22 s), fetch the payment with
//!    [`MercadoPagoClient::payment`]: the body is not signed, so only the fetched payment says
//!    what happened (module `client`);
//! 4. [`to_event`] turns the payment into a [`ProviderEvent`].
//!
//! Status mapping of [`to_event`]:
//!
//! | `status` | [`ProviderEventKind`] | `amount` |
//! |---|---|---|
//! | `approved` | `Paid` | `transaction_amount` |
//! | `refunded` | `Refunded` | `transaction_amount_refunded` if above zero, else `transaction_amount` |
//! | `charged_back` | `Refunded` | `transaction_amount` |
//! | `pending`, `authorized`, `in_process`, `in_mediation` | `Pending` | none |
//! | `rejected`, `cancelled` | `Ignored` | none |
//! | anything else | `Ignored`, with a note | none |
//!
//! References: `external_reference` (plazo sets it to the invoice id when creating the
//! preference or payment) and `metadata.invoice_id` ([`METADATA_INVOICE_KEY`]; Mercado Pago
//! returns metadata keys in snake_case, so `invoiceId` given at creation reads back as
//! `invoice_id`).

mod client;
mod signature;
#[cfg(test)]
mod tests;

pub use client::{
    ClientBuildError, DEFAULT_BASE_URL, DEFAULT_TIMEOUT, FetchError, MercadoPagoClient,
    MpErrorInfo, MpPayment,
};
pub use signature::{
    DEFAULT_TOLERANCE, HEADER_REQUEST_ID, HEADER_SIGNATURE, MercadoPagoSignatureError, manifest,
    sign, verify, verify_with_tolerance,
};

use rust_decimal::Decimal;

use super::event::{InvoiceRefs, ProviderEvent, ProviderEventKind};
use crate::domain::Currency;

/// The [`ProviderEvent::provider`] of Mercado Pago events.
pub const PROVIDER: &str = "mercadopago";
/// The `metadata` key read into [`InvoiceRefs::metadata`].
pub const METADATA_INVOICE_KEY: &str = "invoice_id";
/// The notification type plazo acts on.
pub const PAYMENT_TYPE: &str = "payment";

/// Whether `id` looks like a Mercado Pago id and is safe as a URL path segment: 1 to 64 ASCII
/// letters, digits, `-` or `_`.
pub(crate) fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Why a notification could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    /// The body is not a JSON object.
    #[error("Mercado Pago notification body is not a JSON object: {0}")]
    BadBody(String),
    /// Neither the query (`type`, legacy `topic`) nor the body says what the notification is
    /// about.
    #[error("Mercado Pago notification has no type (expected ?type=payment in the URL)")]
    MissingType,
    /// The query and the body disagree on the type.
    #[error("Mercado Pago notification type is {query:?} in the URL but {body:?} in the body")]
    TypeMismatch {
        /// The query's `type`.
        query: String,
        /// The body's `type`.
        body: String,
    },
    /// A payment notification without `data.id`.
    #[error("Mercado Pago payment notification has no data.id (expected ?data.id=<id> in the URL)")]
    MissingDataId,
    /// The query and the (unsigned) body disagree on `data.id`.
    #[error(
        "Mercado Pago notification data.id is {query:?} in the URL but {body:?} in the body \
         (the body is not signed; refusing it)"
    )]
    DataIdMismatch {
        /// The query's `data.id`.
        query: String,
        /// The body's `data.id`.
        body: String,
    },
    /// `data.id` of a payment notification is not an id.
    #[error(
        "Mercado Pago notification data.id {0:?} is not an id (letters, digits, '-' or '_', at \
         most 64)"
    )]
    InvalidDataId(String),
}

/// A Mercado Pago webhook notification: which resource changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The resource id: the query's `data.id`, else the body's `data.id` (which the signature
    /// does not cover). Empty for a non-payment notification that carries none.
    pub data_id: String,
    /// The topic: `payment` for the notifications plazo acts on (`merchant_order`,
    /// `topic_merchant_order_wh`, `order`... are acknowledged and ignored).
    pub kind: String,
    /// `payment.created`, `payment.updated`..., when the body says.
    pub action: Option<String>,
    /// The notification's own id (the body's `id`, a number at Mercado Pago), when given.
    pub id: Option<String>,
}

/// A JSON string or number as text; `None` for anything else or blank.
fn json_text(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The query's `data.id`, the value [`verify`] needs. `query` is the raw query string (a
/// leading `?` is allowed).
pub fn query_data_id(query: &str) -> Option<String> {
    query_param(query, "data.id")
}

/// A query parameter, percent-decoded and trimmed; `None` when absent or blank.
fn query_param(query: &str, name: &str) -> Option<String> {
    let query = query.strip_prefix('?').unwrap_or(query);
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

impl Notification {
    /// Reads a notification from the raw query string (`data.id`, `type`; a leading `?` is
    /// allowed) and the raw body (`action`, `type`, `data.id`, `id`; may be empty).
    ///
    /// The query wins: its `data.id` is the one the signature covers, and a body that names
    /// another id or type is refused. The legacy IPN form `?topic=payment&id=<id>` is read too
    /// (it is not signed; the fetch decides anyway). A notification that is not about a payment
    /// is returned as is, for the caller to acknowledge and ignore.
    pub fn parse(query: &str, body: &[u8]) -> Result<Notification, NotificationError> {
        let json: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
            serde_json::Value::Object(Default::default())
        } else {
            serde_json::from_slice(body).map_err(|e| NotificationError::BadBody(e.to_string()))?
        };
        if !json.is_object() {
            return Err(NotificationError::BadBody(
                "expected an object like {\"type\":\"payment\",\"data\":{\"id\":\"…\"}}".into(),
            ));
        }

        let q_type = query_param(query, "type");
        let q_topic = query_param(query, "topic");
        let b_type = json_text(json.get("type")).or_else(|| json_text(json.get("topic")));
        let kind = match (q_type.or(q_topic.clone()), b_type) {
            (Some(q), Some(b)) if q != b => {
                return Err(NotificationError::TypeMismatch { query: q, body: b });
            }
            (Some(k), _) | (None, Some(k)) => k,
            (None, None) => return Err(NotificationError::MissingType),
        };

        // Legacy IPN: `?topic=payment&id=<id>`.
        let q_id = query_data_id(query).or_else(|| {
            q_topic
                .is_some()
                .then(|| query_param(query, "id"))
                .flatten()
        });
        let b_id = json_text(json.get("data").and_then(|d| d.get("id")));
        let data_id = match (q_id, b_id) {
            (Some(q), Some(b)) if q != b => {
                return Err(NotificationError::DataIdMismatch { query: q, body: b });
            }
            (Some(id), _) | (None, Some(id)) => id,
            (None, None) => String::new(),
        };

        let n = Notification {
            data_id,
            kind,
            action: json_text(json.get("action")),
            id: json_text(json.get("id")),
        };
        if n.is_payment() {
            if n.data_id.is_empty() {
                return Err(NotificationError::MissingDataId);
            }
            if !valid_id(&n.data_id) {
                return Err(NotificationError::InvalidDataId(n.data_id));
            }
        }
        Ok(n)
    }

    /// Whether it is about a payment (`type=payment`), the only kind plazo acts on.
    pub fn is_payment(&self) -> bool {
        self.kind == PAYMENT_TYPE
    }

    /// The [`ProviderEvent::event_id`]: `{data.id}:{x-request-id}`, or `{data.id}:{id}` (the
    /// notification id) without a request id, or `{data.id}` alone without either.
    pub fn event_id(&self, x_request_id: Option<&str>) -> String {
        match x_request_id
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .or(self.id.as_deref())
        {
            Some(suffix) => format!("{}:{suffix}", self.data_id),
            None => self.data_id.clone(),
        }
    }

    /// The [`ProviderEvent::event_type`]: the `action` (`payment.updated`), else the type.
    pub fn event_type(&self) -> &str {
        self.action.as_deref().unwrap_or(&self.kind)
    }
}

/// A trimmed, non-empty string.
fn non_blank(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Turns a fetched payment into a [`ProviderEvent`] (see the module docs for the mapping).
///
/// `event_id` and `event_type` come from the notification ([`Notification::event_id`],
/// [`Notification::event_type`]). `object_id` is the payment id; `occurred_at` is
/// `date_approved`; `currency` is `currency_id` upper-cased. A currency plazo does not know,
/// and a partial refund on an approved payment, are noted (the kind is unchanged).
pub fn to_event(payment: &MpPayment, event_id: &str, event_type: &str) -> ProviderEvent {
    use ProviderEventKind::{Ignored, Paid, Pending, Refunded};

    let status = payment.status.trim();
    let status_text = match non_blank(payment.status_detail.as_deref()) {
        Some(d) => format!("{status} ({d})"),
        None => status.to_owned(),
    };
    let refunded = payment
        .transaction_amount_refunded
        .filter(|a| *a > Decimal::ZERO);
    let mut notes = Vec::new();
    let (kind, amount) = match status {
        "approved" => {
            if let Some(r) = refunded {
                notes.push(format!(
                    "approved payment with {r} refunded ({status_text}); the refund is not \
                     applied by this event"
                ));
            }
            (Paid, Some(payment.transaction_amount))
        }
        "refunded" => (
            Refunded,
            Some(refunded.unwrap_or(payment.transaction_amount)),
        ),
        "charged_back" => (Refunded, Some(payment.transaction_amount)),
        "pending" | "authorized" | "in_process" | "in_mediation" => {
            notes.push(format!(
                "payment is {status_text}: nothing to apply until it is approved"
            ));
            (Pending, None)
        }
        "rejected" | "cancelled" => {
            notes.push(format!("payment was {status_text}: nothing to apply"));
            (Ignored, None)
        }
        _ => {
            notes.push(format!(
                "unknown Mercado Pago payment status {status_text:?}: not applied"
            ));
            (Ignored, None)
        }
    };

    let currency = non_blank(Some(&payment.currency_id)).map(|c| c.to_ascii_uppercase());
    if matches!(kind, Paid | Refunded) {
        match &currency {
            Some(c) if Currency::parse(c).is_err() => notes.push(format!(
                "currency {c} is not one plazo knows; no invoice will match it"
            )),
            None => notes.push("the payment has no currency_id".to_owned()),
            Some(_) => {}
        }
    }

    ProviderEvent {
        provider: PROVIDER.to_owned(),
        event_id: event_id.to_owned(),
        event_type: event_type.to_owned(),
        kind,
        object_id: payment.id.clone(),
        amount,
        currency,
        refs: InvoiceRefs {
            metadata: payment
                .metadata
                .get(METADATA_INVOICE_KEY)
                .and_then(serde_json::Value::as_str)
                .and_then(|s| non_blank(Some(s))),
            client_reference_id: None,
            external_reference: non_blank(payment.external_reference.as_deref()),
            number: None,
        },
        occurred_at: payment.date_approved,
        same_payment: Vec::new(),
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    }
}

impl super::PaymentFetcher for MercadoPagoClient {
    fn fetch<'a>(
        &'a self,
        data_id: &'a str,
        event_id: &'a str,
        event_type: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<ProviderEvent, super::FetchFailure>> {
        Box::pin(async move {
            match self.payment(data_id).await {
                Ok(p) => Ok(to_event(&p, event_id, event_type)),
                Err(e) => Err(super::FetchFailure {
                    transient: e.is_transient(),
                    message: e.to_string(),
                    retry_after: e.retry_after(),
                }),
            }
        })
    }
}
