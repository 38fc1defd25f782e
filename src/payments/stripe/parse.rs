//! Stripe event parsing: a verified webhook body into a [`ProviderEvent`].

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::domain::Currency;
use crate::payments::event::{InvoiceRefs, ProviderEvent, ProviderEventKind};

/// The `provider` of every event [`parse_event`] builds.
pub const PROVIDER: &str = "stripe";

/// The `object` of a thin (v2) event, which carries no `data.object` snapshot.
pub const THIN_EVENT_OBJECT: &str = "v2.core.event";

type Obj = Map<String, Value>;

/// Stripe's zero-decimal currencies (docs.stripe.com/currencies#zero-decimal): API amounts are
/// whole units.
const STRIPE_ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "VND", "VUV", "XAF",
    "XOF", "XPF",
];
/// Stripe's three-decimal currencies: API amounts are thousandths.
const STRIPE_THREE_DECIMAL: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];
/// Currencies whose Stripe API amounts do not follow their ISO 4217 minor units (ISK is
/// zero-decimal in ISO 4217 but sent by Stripe as a two-decimal value; UGX is listed both ways
/// in the sources found): refused rather than guessed.
const STRIPE_SPECIAL: &[&str] = &["ISK", "UGX"];

/// Why a Stripe webhook body could not be read as an event.
///
/// An event that is well-formed but not actionable (unknown type, unknown currency, a thin
/// event...) is not an error: it comes back as [`ProviderEventKind::Ignored`] with a note.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeParseError {
    /// The body is not JSON.
    #[error("Stripe webhook body is not valid JSON: {0}")]
    NotJson(String),
    /// The body is JSON but not an object.
    #[error("Stripe webhook body is JSON but not an object")]
    NotAnObject,
    /// The body is some other Stripe object (its `object` is not `event`).
    #[error("Stripe webhook body is a {0:?} object, not an event (object \"event\")")]
    NotAnEvent(String),
    /// A required field is absent, `null` or empty.
    #[error("Stripe event has no {0}")]
    Missing(&'static str),
    /// A field has the wrong JSON type.
    #[error("Stripe event field {field} is not {expected}")]
    Invalid {
        /// The field's path, e.g. `data.object`.
        field: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// `data.object` is not the kind of object the event type carries.
    #[error(
        "Stripe event {event_id} ({event_type}) carries a {found:?} object where {expected:?} \
         was expected"
    )]
    UnexpectedObject {
        /// The event id.
        event_id: String,
        /// The event type.
        event_type: String,
        /// The `object` the type implies.
        expected: &'static str,
        /// The `object` found.
        found: String,
    },
}

/// A non-empty string field, or why not.
fn req_str<'a>(obj: &'a Obj, key: &str, field: &'static str) -> Result<&'a str, StripeParseError> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        None | Some(Value::Null) | Some(Value::String(_)) => Err(StripeParseError::Missing(field)),
        Some(_) => Err(StripeParseError::Invalid {
            field,
            expected: "a string",
        }),
    }
}

/// An object field, or why not.
fn req_obj<'a>(obj: &'a Obj, key: &str, field: &'static str) -> Result<&'a Obj, StripeParseError> {
    match obj.get(key) {
        Some(Value::Object(o)) => Ok(o),
        None | Some(Value::Null) => Err(StripeParseError::Missing(field)),
        Some(_) => Err(StripeParseError::Invalid {
            field,
            expected: "an object",
        }),
    }
}

/// A non-empty string field, if there is one.
fn opt_str(obj: &Obj, key: &str) -> Option<String> {
    obj.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// An expandable reference: the id string, or the `id` of an expanded object.
fn expandable_id(obj: &Obj, key: &str) -> Option<String> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Object(o)) => opt_str(o, "id"),
        _ => None,
    }
}

/// The ids of the same money found on `obj` under `keys` (each a string id or an expanded
/// object), plus those under `list.data[].<inner>.<keys>` (an invoice's `payments`), without
/// `own` and without repeats.
fn same_payment(obj: &Obj, own: &str, keys: &[&str], list: Option<(&str, &str)>) -> Vec<String> {
    let mut ids: Vec<String> = keys.iter().filter_map(|k| expandable_id(obj, k)).collect();
    if let Some((list, inner)) = list {
        let items = obj
            .get(list)
            .and_then(Value::as_object)
            .and_then(|l| l.get("data"))
            .and_then(Value::as_array);
        for item in items.into_iter().flatten().take(100) {
            if let Some(o) = item
                .as_object()
                .and_then(|i| i.get(inner))
                .and_then(Value::as_object)
            {
                ids.extend(keys.iter().filter_map(|k| expandable_id(o, k)));
            }
        }
    }
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        if id != own && id.len() <= 255 && !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// `metadata[key]`, if it is a non-empty string.
fn metadata_ref(obj: &Obj, key: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    obj.get("metadata")
        .and_then(Value::as_object)
        .and_then(|m| opt_str(m, key))
}

/// A Unix-seconds integer (v1 events) or an RFC 3339 string (v2 events).
fn timestamp(v: Option<&Value>) -> Option<Timestamp> {
    match v? {
        Value::Number(n) => Timestamp::from_second(n.as_i64()?).ok(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// How many decimals Stripe's API amounts have in `code` (upper-case), `None` for the
/// currencies Stripe treats specially.
pub(super) fn stripe_decimals(code: &str) -> Option<u32> {
    if STRIPE_SPECIAL.contains(&code) {
        None
    } else if STRIPE_ZERO_DECIMAL.contains(&code) {
        Some(0)
    } else if STRIPE_THREE_DECIMAL.contains(&code) {
        Some(3)
    } else {
        Some(2)
    }
}

/// The object's `currency`, known to plazo and read the same way by Stripe; the error is the
/// note for an event that cannot be applied. `amount_field` names the amount for that note.
fn currency_of(obj: &Obj, amount_field: &str) -> Result<Currency, String> {
    let raw_amount = obj
        .get(amount_field)
        .map_or_else(|| "absent".to_owned(), Value::to_string);
    let Some(code) = obj.get("currency").and_then(Value::as_str) else {
        return Err(format!(
            "no currency: {amount_field} {raw_amount} (minor units) left unconverted; recorded, \
             not applied"
        ));
    };
    let upper = code.trim().to_ascii_uppercase();
    let currency = Currency::parse(&upper).map_err(|_| {
        format!(
            "unknown currency {upper}: {amount_field} {raw_amount} (minor units) left \
             unconverted; recorded, not applied"
        )
    })?;
    match stripe_decimals(&upper) {
        Some(d) if d == currency.minor_units() => Ok(currency),
        Some(d) => Err(format!(
            "Stripe sends {upper} amounts with {d} decimals but plazo counts {}: {amount_field} \
             {raw_amount} left unconverted; recorded, not applied",
            currency.minor_units()
        )),
        None => Err(format!(
            "Stripe represents {upper} amounts specially: {amount_field} {raw_amount} left \
             unconverted; recorded, not applied"
        )),
    }
}

/// A non-negative integer amount field (minor units), or the note saying why not.
fn minor_amount(obj: &Obj, field: &str) -> Result<i64, String> {
    match obj.get(field).and_then(Value::as_i64) {
        Some(n) if n >= 0 => Ok(n),
        Some(n) => Err(format!("{field} is negative ({n}); recorded, not applied")),
        None => Err(format!(
            "{field} is missing or not an integer; recorded, not applied"
        )),
    }
}

/// Minor units to major units: 125000 COP → 1250.00, 5000 CLP → 5000.
fn to_major(minor: i64, currency: Currency) -> Result<Decimal, String> {
    Decimal::try_new(minor, currency.minor_units())
        .map_err(|e| format!("cannot convert {minor} {currency} minor units: {e}"))
}

/// `amount_field` of `obj` in major units, with the upper-case currency code.
fn money(obj: &Obj, amount_field: &str) -> Result<(Decimal, String), String> {
    let currency = currency_of(obj, amount_field)?;
    let minor = minor_amount(obj, amount_field)?;
    Ok((to_major(minor, currency)?, currency.code().to_owned()))
}

/// What every event shares.
struct Envelope<'a> {
    id: &'a str,
    event_type: &'a str,
    created: Option<Timestamp>,
}

impl Envelope<'_> {
    /// An event of `kind` about `object_id`, with no amount, refs or note yet.
    fn event(&self, kind: ProviderEventKind, object_id: String) -> ProviderEvent {
        ProviderEvent {
            provider: PROVIDER.to_owned(),
            event_id: self.id.to_owned(),
            event_type: self.event_type.to_owned(),
            kind,
            object_id,
            amount: None,
            currency: None,
            refs: InvoiceRefs::default(),
            occurred_at: self.created,
            same_payment: Vec::new(),
            note: None,
        }
    }

    /// Fails when `obj` says it is some object other than `expected` (an `obj` without an
    /// `object` field is accepted).
    fn expect_object(&self, obj: &Obj, expected: &'static str) -> Result<(), StripeParseError> {
        match obj.get("object").and_then(Value::as_str) {
            Some(found) if found != expected => Err(StripeParseError::UnexpectedObject {
                event_id: self.id.to_owned(),
                event_type: self.event_type.to_owned(),
                expected,
                found: found.to_owned(),
            }),
            _ => Ok(()),
        }
    }
}

/// Sets `kind`, `amount` and `currency` from `money`, or turns the event into `Ignored` with
/// the note when the amount cannot be read.
fn with_money(
    mut ev: ProviderEvent,
    kind: ProviderEventKind,
    money: Result<(Decimal, String), String>,
) -> ProviderEvent {
    match money {
        Ok((amount, currency)) => {
            ev.kind = kind;
            ev.amount = Some(amount);
            ev.currency = Some(currency);
        }
        Err(note) => {
            ev.kind = ProviderEventKind::Ignored;
            ev.note = Some(note);
        }
    }
    ev
}

/// `invoice.paid`, `invoice.payment_succeeded`.
fn invoice(env: &Envelope<'_>, obj: &Obj, key: &str) -> Result<ProviderEvent, StripeParseError> {
    env.expect_object(obj, "invoice")?;
    let id = req_str(obj, "id", "data.object.id")?;
    let mut ev = env.event(ProviderEventKind::Paid, id.to_owned());
    ev.refs.metadata = metadata_ref(obj, key);
    ev.refs.number = opt_str(obj, "number");
    ev.same_payment = same_payment(
        obj,
        id,
        &["payment_intent", "charge"],
        Some(("payments", "payment")),
    );
    let paid_at = obj
        .get("status_transitions")
        .and_then(Value::as_object)
        .and_then(|st| timestamp(st.get("paid_at")));
    ev.occurred_at = paid_at.or(env.created);
    Ok(with_money(
        ev,
        ProviderEventKind::Paid,
        money(obj, "amount_paid"),
    ))
}

/// `payment_intent.succeeded`.
fn payment_intent(
    env: &Envelope<'_>,
    obj: &Obj,
    key: &str,
) -> Result<ProviderEvent, StripeParseError> {
    env.expect_object(obj, "payment_intent")?;
    let id = req_str(obj, "id", "data.object.id")?;
    let mut ev = env.event(ProviderEventKind::Paid, id.to_owned());
    ev.refs.metadata = metadata_ref(obj, key);
    ev.same_payment = same_payment(obj, id, &["latest_charge", "invoice"], None);
    Ok(with_money(
        ev,
        ProviderEventKind::Paid,
        money(obj, "amount_received"),
    ))
}

/// Which Checkout Session event.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CheckoutEvent {
    Completed,
    AsyncSucceeded,
    AsyncFailed,
}

/// `checkout.session.completed`, `…async_payment_succeeded`, `…async_payment_failed`.
fn checkout(
    env: &Envelope<'_>,
    obj: &Obj,
    key: &str,
    which: CheckoutEvent,
) -> Result<ProviderEvent, StripeParseError> {
    env.expect_object(obj, "checkout.session")?;
    let session_id = req_str(obj, "id", "data.object.id")?;
    let object_id = expandable_id(obj, "payment_intent").unwrap_or_else(|| session_id.to_owned());
    let mut ev = env.event(ProviderEventKind::Ignored, object_id.clone());
    ev.same_payment = same_payment(obj, &object_id, &["invoice"], None);
    ev.refs.client_reference_id = opt_str(obj, "client_reference_id");
    ev.refs.metadata = metadata_ref(obj, key);
    let status = obj.get("payment_status").and_then(Value::as_str);
    match (which, status) {
        (CheckoutEvent::AsyncFailed, _) => {
            ev.note = Some(format!(
                "the delayed payment of checkout session {session_id} failed; nothing to apply"
            ));
            Ok(ev)
        }
        (_, Some("paid")) => Ok(with_money(
            ev,
            ProviderEventKind::Paid,
            money(obj, "amount_total"),
        )),
        (CheckoutEvent::Completed, Some("unpaid")) => {
            const WAITING: &str = "waiting for checkout.session.async_payment_succeeded";
            ev.kind = ProviderEventKind::Pending;
            match money(obj, "amount_total") {
                Ok((amount, currency)) => {
                    ev.amount = Some(amount);
                    ev.currency = Some(currency);
                    ev.note = Some(WAITING.to_owned());
                }
                Err(why) => ev.note = Some(format!("{WAITING} ({why})")),
            }
            Ok(ev)
        }
        (CheckoutEvent::Completed, Some("no_payment_required")) => {
            ev.note = Some(format!(
                "checkout session {session_id} needed no payment (payment_status \
                 no_payment_required); nothing to apply"
            ));
            Ok(ev)
        }
        (_, other) => {
            ev.note = Some(format!(
                "checkout session {session_id} has payment_status {}, not \"paid\"; nothing to \
                 apply",
                other.map_or_else(|| "absent".to_owned(), |s| format!("{s:?}"))
            ));
            Ok(ev)
        }
    }
}

/// The amount `charge.refunded` re-opens, its currency code and the note saying how it was
/// derived; or the note saying why nothing is applied.
fn refund_amount(obj: &Obj, previous: Option<&Obj>) -> Result<(Decimal, String, String), String> {
    let currency = currency_of(obj, "amount_refunded")?;
    let total = minor_amount(obj, "amount_refunded")?;
    let before = previous
        .and_then(|p| p.get("amount_refunded").and_then(Value::as_i64))
        .filter(|b| *b >= 0);
    let (minor, note) = match before {
        Some(before) => {
            let delta = total.saturating_sub(before);
            if delta <= 0 {
                return Err(format!(
                    "amount_refunded did not grow ({total}, previously {before}, minor units); \
                     nothing to re-open"
                ));
            }
            let note = format!(
                "amount refunded by this event: amount_refunded {total} minus \
                 previous_attributes.amount_refunded {before} (minor units)"
            );
            (delta, note)
        }
        None if total == 0 => return Err("amount_refunded is 0; nothing to re-open".to_owned()),
        None => {
            let note = format!(
                "amount is the charge's cumulative amount_refunded ({total} minor units): \
                 previous_attributes.amount_refunded is absent, so earlier partial refunds of \
                 this charge are included"
            );
            (total, note)
        }
    };
    Ok((to_major(minor, currency)?, currency.code().to_owned(), note))
}

/// `charge.refunded`: the amount refunded by this event when `previous_attributes` says.
fn charge_refunded(
    env: &Envelope<'_>,
    obj: &Obj,
    previous: Option<&Obj>,
    key: &str,
) -> Result<ProviderEvent, StripeParseError> {
    env.expect_object(obj, "charge")?;
    let charge_id = req_str(obj, "id", "data.object.id")?;
    let object_id = expandable_id(obj, "payment_intent").unwrap_or_else(|| charge_id.to_owned());
    let mut ev = env.event(ProviderEventKind::Ignored, object_id);
    ev.refs.metadata = metadata_ref(obj, key);

    match refund_amount(obj, previous) {
        Ok((amount, currency, note)) => {
            ev.kind = ProviderEventKind::Refunded;
            ev.amount = Some(amount);
            ev.currency = Some(currency);
            ev.note = Some(note);
        }
        Err(note) => ev.note = Some(note),
    }
    Ok(ev)
}

/// A thin (v2) event: no snapshot to read, so nothing to apply.
fn thin(env: &Envelope<'_>, event: &Obj) -> ProviderEvent {
    let object_id = event
        .get("related_object")
        .and_then(Value::as_object)
        .and_then(|o| opt_str(o, "id"))
        .unwrap_or_else(|| env.id.to_owned());
    let mut ev = env.event(ProviderEventKind::Ignored, object_id);
    ev.note = Some(format!(
        "thin event ({THIN_EVENT_OBJECT}) {} is not handled: plazo reads snapshot events \
         (object \"event\"); point a snapshot-event endpoint at plazo",
        env.event_type
    ));
    ev
}

/// Parses a Stripe webhook body (already verified with [`super::verify`]) into a
/// [`ProviderEvent`] with `provider` `"stripe"`, `event_id` the event `id` and `event_type`
/// its `type`.
///
/// `metadata_key` is the metadata key under which our invoice id was put on the Stripe object
/// (`refs.metadata`); an empty key reads none.
///
/// | `type` | `kind` | `object_id` | `amount` (minor → major units of `currency`) |
/// |---|---|---|---|
/// | `invoice.paid`, `invoice.payment_succeeded` | `Paid` | invoice `id` | `amount_paid` |
/// | `payment_intent.succeeded` | `Paid` | PaymentIntent `id` | `amount_received` |
/// | `checkout.session.completed` | `Paid` if `payment_status` is `paid`; `Pending` if `unpaid`; else `Ignored` | `payment_intent`, else the session `id` | `amount_total` |
/// | `checkout.session.async_payment_succeeded` | `Paid` (if `payment_status` is `paid`) | as above | `amount_total` |
/// | `checkout.session.async_payment_failed` | `Ignored` | as above | — |
/// | `charge.refunded` | `Refunded` | the charge's `payment_intent`, else the charge `id` | this event's refund: `amount_refunded` − `previous_attributes.amount_refunded`, else the cumulative `amount_refunded` (the note says which) |
/// | anything else, and thin events (`v2.core.event`) | `Ignored` | `data.object.id` (thin: `related_object.id`), else the event id | — |
///
/// The same money often comes in two events (`invoice.paid` and `payment_intent.succeeded`):
/// `same_payment` lists the other ids of it the object names: an invoice's `payment_intent`
/// and `charge` (and those of each `payments.data[].payment`), a payment intent's
/// `latest_charge` and `invoice`, a Checkout Session's `invoice`. A payment is applied once
/// across all of them.
///
/// References: `metadata[metadata_key]` on every object, `number` on invoices,
/// `client_reference_id` on Checkout Sessions. `occurred_at` is the invoice's
/// `status_transitions.paid_at` when set, else the event's `created`.
///
/// An event whose money cannot be read safely (unknown currency, a currency whose Stripe
/// decimals differ from plazo's, a missing or negative amount, a refund that did not grow) is
/// returned `Ignored`, without `amount` or `currency`, and with a note saying why, so it is
/// recorded and reported but never applied. `Ignored` events never carry an amount.
///
/// Errors: a body that is not a JSON object, not an event, or lacks `id`, `type`,
/// `data.object` or (for the handled types) `data.object.id`, or whose `data.object` is not
/// the object its type implies.
pub fn parse_event(raw_body: &[u8], metadata_key: &str) -> Result<ProviderEvent, StripeParseError> {
    let value: Value =
        serde_json::from_slice(raw_body).map_err(|e| StripeParseError::NotJson(e.to_string()))?;
    let Value::Object(event) = value else {
        return Err(StripeParseError::NotAnObject);
    };
    let object = match event.get("object") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            return Err(StripeParseError::Invalid {
                field: "object",
                expected: "a string",
            });
        }
    };
    if let Some(other) = object.filter(|o| *o != "event" && *o != THIN_EVENT_OBJECT) {
        return Err(StripeParseError::NotAnEvent(other.to_owned()));
    }
    let env = Envelope {
        id: req_str(&event, "id", "id")?,
        event_type: req_str(&event, "type", "type")?,
        created: timestamp(event.get("created")),
    };
    if object == Some(THIN_EVENT_OBJECT) {
        return Ok(thin(&env, &event));
    }
    let data = req_obj(&event, "data", "data")?;
    let obj = req_obj(data, "object", "data.object")?;
    let previous = data.get("previous_attributes").and_then(Value::as_object);
    match env.event_type {
        "invoice.paid" | "invoice.payment_succeeded" => invoice(&env, obj, metadata_key),
        "payment_intent.succeeded" => payment_intent(&env, obj, metadata_key),
        "checkout.session.completed" => checkout(&env, obj, metadata_key, CheckoutEvent::Completed),
        "checkout.session.async_payment_succeeded" => {
            checkout(&env, obj, metadata_key, CheckoutEvent::AsyncSucceeded)
        }
        "checkout.session.async_payment_failed" => {
            checkout(&env, obj, metadata_key, CheckoutEvent::AsyncFailed)
        }
        "charge.refunded" => charge_refunded(&env, obj, previous, metadata_key),
        other => {
            let object_id = opt_str(obj, "id").unwrap_or_else(|| env.id.to_owned());
            let mut ev = env.event(ProviderEventKind::Ignored, object_id);
            ev.refs.metadata = metadata_ref(obj, metadata_key);
            ev.note = Some(format!("event type {other} is not handled"));
            Ok(ev)
        }
    }
}
