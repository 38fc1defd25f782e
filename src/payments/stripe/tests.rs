use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::parse::stripe_decimals;
use super::*;
use crate::domain::Currency;
use crate::payments::{InvoiceRefs, ProviderEvent, ProviderEventKind};

// ---------------------------------------------------------------------------------------------
// Signature
// ---------------------------------------------------------------------------------------------

#[derive(serde::Deserialize)]
struct Vector {
    secret: String,
    t: i64,
    payload: String,
    signed_payload: String,
    expected_v1: String,
    header: String,
}

fn vector() -> Vector {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/signature_test_vectors.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut all: Value = serde_json::from_str(&text).unwrap();
    let mut vs: Vec<Vector> = serde_json::from_value(all["stripe"].take()).unwrap();
    assert_eq!(vs.len(), 1);
    vs.remove(0)
}

fn at(s: i64) -> Timestamp {
    Timestamp::from_second(s).unwrap()
}

const TOL: Duration = DEFAULT_TOLERANCE;

#[test]
fn stripe_vector_verifies_ten_seconds_later() {
    let v = vector();
    assert_eq!(v.signed_payload, format!("{}.{}", v.t, v.payload));
    assert_eq!(v.header, format!("t={},v1={}", v.t, v.expected_v1));
    verify(
        &v.secret,
        Some(&v.header),
        v.payload.as_bytes(),
        at(v.t + 10),
        TOL,
    )
    .unwrap();
}

#[test]
fn sign_header_reproduces_the_vector() {
    let v = vector();
    assert_eq!(sign_header(&v.secret, v.t, v.payload.as_bytes()), v.header);
}

#[test]
fn tampered_body_is_rejected() {
    let v = vector();
    let body = v.payload.replace("evt_test_webhook", "evt_test_webhoo0");
    let err = verify(&v.secret, Some(&v.header), body.as_bytes(), at(v.t), TOL).unwrap_err();
    assert_eq!(err, StripeSignatureError::Mismatch { tried: 1 });
    let msg = err.to_string();
    assert!(
        msg.contains("No signatures found matching the expected signature for payload"),
        "{msg}"
    );
    assert!(msg.contains("signing secret"), "{msg}");
    // A changed timestamp is a changed signed payload too.
    let header = v.header.replace("t=1700000000", "t=1700000001");
    assert_eq!(
        verify(&v.secret, Some(&header), v.payload.as_bytes(), at(v.t), TOL),
        Err(StripeSignatureError::Mismatch { tried: 1 })
    );
}

#[test]
fn wrong_secret_is_rejected() {
    let v = vector();
    for secret in [
        "whsec_other_secret",
        // The key is the whole string: without the prefix it is another key.
        "test_secret",
    ] {
        assert_eq!(
            verify(secret, Some(&v.header), v.payload.as_bytes(), at(v.t), TOL),
            Err(StripeSignatureError::Mismatch { tried: 1 }),
            "{secret}"
        );
    }
    // Surrounding whitespace (a secret file's newline) is not part of the key.
    verify(
        &format!(" {}\n", v.secret),
        Some(&v.header),
        v.payload.as_bytes(),
        at(v.t),
        TOL,
    )
    .unwrap();
    assert_eq!(
        verify("  ", Some(&v.header), v.payload.as_bytes(), at(v.t), TOL),
        Err(StripeSignatureError::NoSecret)
    );
}

#[test]
fn second_of_several_v1_matches() {
    let v = vector();
    let stale = "0".repeat(64);
    let header = format!(
        "t={},v1={stale},v1={},v0={stale},v2=whatever,junk",
        v.t, v.expected_v1
    );
    verify(&v.secret, Some(&header), v.payload.as_bytes(), at(v.t), TOL).unwrap();
    // Spaces around items are tolerated.
    let spaced = format!("t={}, v1={stale}, v1={}", v.t, v.expected_v1);
    verify(&v.secret, Some(&spaced), v.payload.as_bytes(), at(v.t), TOL).unwrap();
    // Upper-case hex is not what Stripe sends, and is compared as a string like the SDKs do.
    let upper = format!("t={},v1={}", v.t, v.expected_v1.to_uppercase());
    assert_eq!(
        verify(&v.secret, Some(&upper), v.payload.as_bytes(), at(v.t), TOL),
        Err(StripeSignatureError::Mismatch { tried: 1 })
    );
    let two_bad = format!("t={},v1={stale},v1=", v.t);
    assert_eq!(
        verify(
            &v.secret,
            Some(&two_bad),
            v.payload.as_bytes(),
            at(v.t),
            TOL
        ),
        Err(StripeSignatureError::Mismatch { tried: 2 })
    );
}

#[test]
fn only_v0_is_rejected_as_no_v1() {
    let v = vector();
    // Even carrying the right value, a v0 item is never accepted.
    let header = format!("t={},v0={}", v.t, v.expected_v1);
    let err = verify(&v.secret, Some(&header), v.payload.as_bytes(), at(v.t), TOL).unwrap_err();
    assert_eq!(err, StripeSignatureError::NoV1Signatures);
    assert!(err.to_string().contains("no v1 signature"), "{err}");
}

#[test]
fn stale_timestamp_is_rejected_past_the_tolerance() {
    let v = vector();
    let tol = Duration::from_secs(300);
    let check = |now: i64| {
        verify(
            &v.secret,
            Some(&v.header),
            v.payload.as_bytes(),
            at(now),
            tol,
        )
    };
    check(v.t + 299).unwrap();
    check(v.t + 300).unwrap();
    let err = check(v.t + 301).unwrap_err();
    assert_eq!(
        err,
        StripeSignatureError::TooOld {
            age_secs: 301,
            over_secs: 1,
            tolerance_secs: 300
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("301 s old, 1 s past the 300 s tolerance"),
        "{msg}"
    );
    // The signature is checked first: a stale forgery is reported as a mismatch.
    assert_eq!(
        verify(&v.secret, Some(&v.header), b"{}", at(v.t + 301), tol),
        Err(StripeSignatureError::Mismatch { tried: 1 })
    );
    // A zero tolerance accepts only the current second (or the future).
    verify(
        &v.secret,
        Some(&v.header),
        v.payload.as_bytes(),
        at(v.t),
        Duration::ZERO,
    )
    .unwrap();
    assert!(matches!(
        verify(
            &v.secret,
            Some(&v.header),
            v.payload.as_bytes(),
            at(v.t + 1),
            Duration::ZERO
        ),
        Err(StripeSignatureError::TooOld { age_secs: 1, .. })
    ));
}

#[test]
fn future_timestamp_is_accepted_up_to_a_day_ahead() {
    let v = vector();
    let check = |now: i64| {
        verify(
            &v.secret,
            Some(&v.header),
            v.payload.as_bytes(),
            at(now),
            TOL,
        )
    };
    // The SDKs never reject the future; plazo accepts up to MAX_FUTURE_SKEW.
    check(v.t - 3600).unwrap();
    check(v.t - 86_400).unwrap();
    let err = check(v.t - 86_401).unwrap_err();
    assert_eq!(
        err,
        StripeSignatureError::TooFarInFuture {
            ahead_secs: 86_401,
            max_secs: 86_400
        }
    );
    assert!(err.to_string().contains("host's clock"), "{err}");
}

#[test]
fn missing_or_empty_header_is_rejected() {
    let v = vector();
    for h in [None, Some(""), Some("   ")] {
        let err = verify(&v.secret, h, v.payload.as_bytes(), at(v.t), TOL).unwrap_err();
        assert_eq!(err, StripeSignatureError::MissingHeader);
        assert!(err.to_string().contains("Stripe-Signature"));
    }
}

#[test]
fn garbage_headers_are_malformed() {
    let v = vector();
    let sig = &v.expected_v1;
    for (header, why) in [
        ("garbage".to_owned(), "no t="),
        (format!("v1={sig}"), "no t="),
        (format!("t=,v1={sig}"), "not an integer"),
        (format!("t=abc,v1={sig}"), "not an integer"),
        (format!("t=1700000000.5,v1={sig}"), "not an integer"),
        (format!("t=99999999999999999999,v1={sig}"), "not an integer"),
        (
            format!("t=1700000000,t=1700000000,v1={sig}"),
            "more than one t=",
        ),
    ] {
        let err = verify(&v.secret, Some(&header), v.payload.as_bytes(), at(v.t), TOL).unwrap_err();
        assert!(
            matches!(&err, StripeSignatureError::MalformedHeader(m) if m.contains(why)),
            "{header}: {err}"
        );
    }
    // A long bad value is echoed truncated.
    let long = format!("t={},v1={sig}", "x".repeat(500));
    let err = verify(&v.secret, Some(&long), v.payload.as_bytes(), at(v.t), TOL).unwrap_err();
    assert!(err.to_string().len() < 200, "{err}");
    // A header with a t but nothing else has no v1.
    assert_eq!(
        verify(
            &v.secret,
            Some("t=1700000000"),
            v.payload.as_bytes(),
            at(v.t),
            TOL
        ),
        Err(StripeSignatureError::NoV1Signatures)
    );
}

proptest! {
    #[test]
    fn verify_never_panics(header in ".{0,200}", body in proptest::collection::vec(any::<u8>(), 0..64), now in any::<i32>()) {
        let _ = verify("whsec_test_secret", Some(&header), &body, at(i64::from(now)), TOL);
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

const KEY: &str = "plazo_invoice_id";
const CREATED: i64 = 1_700_000_500;

/// One fixture object from Stripe's `fixtures3.json` subset.
fn fixture(resource: &str) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stripe_fixtures3_subset.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut all: Value = serde_json::from_str(&text).unwrap();
    let obj = all["resources"][resource].take();
    assert!(obj.is_object(), "no fixture {resource}");
    obj
}

/// `base` with the top-level fields of `patch` replaced.
fn patched(mut base: Value, patch: Value) -> Value {
    let base_map = base.as_object_mut().unwrap();
    for (k, v) in patch.as_object().unwrap() {
        base_map.insert(k.clone(), v.clone());
    }
    base
}

/// A snapshot event of `event_type` around `object`.
fn event(event_type: &str, object: Value, previous: Option<Value>) -> Vec<u8> {
    let mut data = json!({ "object": object });
    if let Some(p) = previous {
        data["previous_attributes"] = p;
    }
    serde_json::to_vec(&json!({
        "id": "evt_1",
        "object": "event",
        "api_version": "2026-06-24.dahlia",
        "created": CREATED,
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": event_type,
        "data": data,
    }))
    .unwrap()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn expected(event_type: &str, kind: ProviderEventKind, object_id: &str) -> ProviderEvent {
    ProviderEvent {
        provider: "stripe".into(),
        event_id: "evt_1".into(),
        event_type: event_type.into(),
        kind,
        object_id: object_id.into(),
        amount: None,
        currency: None,
        refs: InvoiceRefs::default(),
        occurred_at: Some(at(CREATED)),
        same_payment: Vec::new(),
        note: None,
    }
}

const INVOICE_ID: &str = "in_1Pgc6tB7WZ01zgkWu9fdqL6I";
const PI_ID: &str = "pi_1PgafyB7WZ01zgkWSjxsAJo3";
const SESSION_ID: &str = "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY";
const CHARGE_ID: &str = "ch_1PgafuB7WZ01zgkWXYmPNZs8";

fn paid_invoice(currency: &str, amount_paid: i64, paid_at: Value) -> Value {
    patched(
        fixture("invoice"),
        json!({
            "status": "paid",
            "currency": currency,
            "amount_due": amount_paid,
            "amount_paid": amount_paid,
            "amount_remaining": 0,
            "number": "F-0042",
            "metadata": { KEY: "INV-2024-001", "other": "x" },
            "status_transitions": {
                "finalized_at": 1_700_000_000,
                "marked_uncollectible_at": null,
                "paid_at": paid_at,
                "voided_at": null
            },
        }),
    )
}

#[test]
fn invoice_paid_two_decimal_currency() {
    let body = event(
        "invoice.paid",
        paid_invoice("cop", 125_000, json!(1_700_000_100)),
        None,
    );
    let ev = parse_event(&body, KEY).unwrap();
    assert_eq!(
        ev,
        ProviderEvent {
            amount: Some(dec("1250.00")),
            currency: Some("COP".into()),
            refs: InvoiceRefs {
                metadata: Some("INV-2024-001".into()),
                number: Some("F-0042".into()),
                ..InvoiceRefs::default()
            },
            occurred_at: Some(at(1_700_000_100)),
            ..expected("invoice.paid", ProviderEventKind::Paid, INVOICE_ID)
        }
    );
    // The scale is kept: it serialises as the string "1250.00".
    assert_eq!(ev.amount.unwrap().to_string(), "1250.00");
    let wire = serde_json::to_value(&ev).unwrap();
    assert_eq!(wire["amount"], json!("1250.00"));
    assert_eq!(wire["kind"], json!("paid"));
}

#[test]
fn invoice_payment_succeeded_zero_decimal_currency_without_paid_at() {
    let body = event(
        "invoice.payment_succeeded",
        paid_invoice("clp", 5_000, Value::Null),
        None,
    );
    let ev = parse_event(&body, KEY).unwrap();
    assert_eq!(
        ev,
        ProviderEvent {
            amount: Some(dec("5000")),
            currency: Some("CLP".into()),
            refs: InvoiceRefs {
                metadata: Some("INV-2024-001".into()),
                number: Some("F-0042".into()),
                ..InvoiceRefs::default()
            },
            // No paid_at: the event's created.
            occurred_at: Some(at(CREATED)),
            ..expected(
                "invoice.payment_succeeded",
                ProviderEventKind::Paid,
                INVOICE_ID
            )
        }
    );
    assert_eq!(ev.amount.unwrap().to_string(), "5000");
}

#[test]
fn invoice_with_no_metadata_key_or_number_has_no_refs() {
    // The fixture invoice as-is: empty metadata, null number, amount_paid 0 USD.
    let ev = parse_event(&event("invoice.paid", fixture("invoice"), None), KEY).unwrap();
    assert_eq!(
        ev,
        ProviderEvent {
            amount: Some(dec("0.00")),
            currency: Some("USD".into()),
            ..expected("invoice.paid", ProviderEventKind::Paid, INVOICE_ID)
        }
    );
    // An empty metadata key reads nothing even when metadata has an empty-named entry.
    let inv = patched(fixture("invoice"), json!({ "metadata": { "": "INV-1" } }));
    let ev = parse_event(&event("invoice.paid", inv, None), "").unwrap();
    assert_eq!(ev.refs, InvoiceRefs::default());
}

#[test]
fn payment_intent_succeeded() {
    let pi = patched(
        fixture("payment_intent"),
        json!({
            "status": "succeeded",
            "amount_received": 1099,
            "metadata": { KEY: "INV-7" },
        }),
    );
    let ev = parse_event(&event("payment_intent.succeeded", pi, None), KEY).unwrap();
    assert_eq!(
        ev,
        ProviderEvent {
            amount: Some(dec("10.99")),
            currency: Some("USD".into()),
            refs: InvoiceRefs {
                metadata: Some("INV-7".into()),
                ..InvoiceRefs::default()
            },
            ..expected("payment_intent.succeeded", ProviderEventKind::Paid, PI_ID)
        }
    );
}

fn session(payment_status: &str, patch: Value) -> Value {
    let s = patched(
        fixture("checkout.session"),
        json!({
            "status": "complete",
            "payment_status": payment_status,
            "amount_subtotal": 125_000,
            "amount_total": 125_000,
            "currency": "mxn",
            "client_reference_id": "INV-9",
            "metadata": { KEY: "INV-9-meta" },
        }),
    );
    patched(s, patch)
}

fn session_refs() -> InvoiceRefs {
    InvoiceRefs {
        metadata: Some("INV-9-meta".into()),
        client_reference_id: Some("INV-9".into()),
        ..InvoiceRefs::default()
    }
}

#[test]
fn checkout_completed_paid_uses_the_payment_intent() {
    let t = "checkout.session.completed";
    let ev = parse_event(&event(t, session("paid", json!({})), None), KEY).unwrap();
    assert_eq!(
        ev,
        ProviderEvent {
            amount: Some(dec("1250.00")),
            currency: Some("MXN".into()),
            refs: session_refs(),
            ..expected(t, ProviderEventKind::Paid, PI_ID)
        }
    );
    // No PaymentIntent (e.g. a subscription-mode session): the session id.
    let s = session("paid", json!({ "payment_intent": null }));
    let ev = parse_event(&event(t, s, None), KEY).unwrap();
    assert_eq!(ev.object_id, SESSION_ID);
    assert_eq!(ev.kind, ProviderEventKind::Paid);
    // An expanded PaymentIntent: its id.
    let s = session(
        "paid",
        json!({ "payment_intent": { "id": "pi_x", "object": "payment_intent" } }),
    );
    assert_eq!(
        parse_event(&event(t, s, None), KEY).unwrap().object_id,
        "pi_x"
    );
}

#[test]
fn checkout_completed_unpaid_is_pending() {
    let t = "checkout.session.completed";
    let ev = parse_event(&event(t, session("unpaid", json!({})), None), KEY).unwrap();
    assert_eq!(
        ev,
        ProviderEvent {
            amount: Some(dec("1250.00")),
            currency: Some("MXN".into()),
            refs: session_refs(),
            note: Some("waiting for checkout.session.async_payment_succeeded".into()),
            ..expected(t, ProviderEventKind::Pending, PI_ID)
        }
    );
    // The fixture session as-is (unpaid, no amount, no currency): still Pending, no amount.
    let ev = parse_event(&event(t, fixture("checkout.session"), None), KEY).unwrap();
    assert_eq!(ev.kind, ProviderEventKind::Pending);
    assert_eq!((ev.amount, ev.currency), (None, None));
    assert_eq!(ev.refs, InvoiceRefs::default());
    let note = ev.note.unwrap();
    assert!(
        note.starts_with("waiting for checkout.session.async_payment_succeeded (no currency"),
        "{note}"
    );
}

#[test]
fn checkout_no_payment_required_and_odd_statuses_are_ignored() {
    let t = "checkout.session.completed";
    let ev = parse_event(
        &event(t, session("no_payment_required", json!({})), None),
        KEY,
    )
    .unwrap();
    assert_eq!(
        ev,
        ProviderEvent {
            refs: session_refs(),
            note: Some(format!(
                "checkout session {SESSION_ID} needed no payment (payment_status \
                 no_payment_required); nothing to apply"
            )),
            ..expected(t, ProviderEventKind::Ignored, PI_ID)
        }
    );
    let ev = parse_event(&event(t, session("weird", json!({})), None), KEY).unwrap();
    assert_eq!(ev.kind, ProviderEventKind::Ignored);
    assert_eq!(ev.amount, None);
    assert!(ev.note.unwrap().contains("payment_status \"weird\""));
}

#[test]
fn checkout_async_payment_succeeded_is_paid() {
    let t = "checkout.session.async_payment_succeeded";
    let ev = parse_event(&event(t, session("paid", json!({})), None), KEY).unwrap();
    assert_eq!(
        ev,
        ProviderEvent {
            amount: Some(dec("1250.00")),
            currency: Some("MXN".into()),
            refs: session_refs(),
            ..expected(t, ProviderEventKind::Paid, PI_ID)
        }
    );
    // Not actually paid: never applied.
    let ev = parse_event(&event(t, session("unpaid", json!({})), None), KEY).unwrap();
    assert_eq!(ev.kind, ProviderEventKind::Ignored);
    assert_eq!(ev.amount, None);
}

#[test]
fn checkout_async_payment_failed_is_ignored() {
    let t = "checkout.session.async_payment_failed";
    let ev = parse_event(&event(t, session("unpaid", json!({})), None), KEY).unwrap();
    assert_eq!(
        ev,
        ProviderEvent {
            refs: session_refs(),
            note: Some(format!(
                "the delayed payment of checkout session {SESSION_ID} failed; nothing to apply"
            )),
            ..expected(t, ProviderEventKind::Ignored, PI_ID)
        }
    );
}

fn refunded_charge(payment_intent: Value, amount_refunded: i64) -> Value {
    patched(
        fixture("charge"),
        json!({
            "amount": 100_000,
            "amount_captured": 100_000,
            "amount_refunded": amount_refunded,
            "captured": true,
            "currency": "cop",
            "refunded": false,
            "payment_intent": payment_intent,
            "metadata": { KEY: "INV-5" },
        }),
    )
}

#[test]
fn charge_refunded_delta_from_previous_attributes() {
    let t = "charge.refunded";
    let body = event(
        t,
        refunded_charge(json!(PI_ID), 60_000),
        Some(json!({ "amount_refunded": 20_000, "refunds": {} })),
    );
    let ev = parse_event(&body, KEY).unwrap();
    assert_eq!(
        ev,
        ProviderEvent {
            amount: Some(dec("400.00")),
            currency: Some("COP".into()),
            refs: InvoiceRefs {
                metadata: Some("INV-5".into()),
                ..InvoiceRefs::default()
            },
            note: Some(
                "amount refunded by this event: amount_refunded 60000 minus \
                 previous_attributes.amount_refunded 20000 (minor units)"
                    .into()
            ),
            ..expected(t, ProviderEventKind::Refunded, PI_ID)
        }
    );
}

#[test]
fn charge_refunded_without_previous_attributes_is_cumulative() {
    let t = "charge.refunded";
    // No payment_intent (a bare charge, as in the fixture): the charge id.
    let ev = parse_event(&event(t, refunded_charge(Value::Null, 60_000), None), KEY).unwrap();
    assert_eq!(
        ev,
        ProviderEvent {
            amount: Some(dec("600.00")),
            currency: Some("COP".into()),
            refs: InvoiceRefs {
                metadata: Some("INV-5".into()),
                ..InvoiceRefs::default()
            },
            note: Some(
                "amount is the charge's cumulative amount_refunded (60000 minor units): \
                 previous_attributes.amount_refunded is absent, so earlier partial refunds of \
                 this charge are included"
                    .into()
            ),
            ..expected(t, ProviderEventKind::Refunded, CHARGE_ID)
        }
    );
}

#[test]
fn charge_refunded_that_did_not_grow_is_ignored() {
    let t = "charge.refunded";
    let body = event(
        t,
        refunded_charge(json!(PI_ID), 20_000),
        Some(json!({ "amount_refunded": 20_000 })),
    );
    let ev = parse_event(&body, KEY).unwrap();
    assert_eq!(ev.kind, ProviderEventKind::Ignored);
    assert_eq!((ev.amount, ev.currency), (None, None));
    assert!(ev.note.unwrap().contains("did not grow"));
    // The fixture charge as-is has refunded nothing.
    let ev = parse_event(&event(t, fixture("charge"), None), KEY).unwrap();
    assert_eq!(ev.kind, ProviderEventKind::Ignored);
    assert_eq!(
        ev.note.as_deref(),
        Some("amount_refunded is 0; nothing to re-open")
    );
}

#[test]
fn unknown_event_type_is_ignored() {
    // The fixture event as-is: plan.created.
    let body = serde_json::to_vec(&fixture("event")).unwrap();
    let ev = parse_event(&body, KEY).unwrap();
    assert_eq!(
        ev,
        ProviderEvent {
            provider: "stripe".into(),
            event_id: "evt_1Pgc76B7WZ01zgkWwyRHS12y".into(),
            event_type: "plan.created".into(),
            kind: ProviderEventKind::Ignored,
            object_id: "price_1PgafmB7WZ01zgkW6dKueIc5".into(),
            amount: None,
            currency: None,
            refs: InvoiceRefs::default(),
            occurred_at: Some(at(1_234_567_890)),
            note: Some("event type plan.created is not handled".into()),
            same_payment: Vec::new(),
        }
    );
    // A handled object under an unhandled type: refs kept for the record, nothing applied.
    let body = event(
        "invoice.payment_failed",
        paid_invoice("cop", 0, Value::Null),
        None,
    );
    let ev = parse_event(&body, KEY).unwrap();
    assert_eq!(
        ev,
        ProviderEvent {
            refs: InvoiceRefs {
                metadata: Some("INV-2024-001".into()),
                ..InvoiceRefs::default()
            },
            note: Some("event type invoice.payment_failed is not handled".into()),
            ..expected(
                "invoice.payment_failed",
                ProviderEventKind::Ignored,
                INVOICE_ID
            )
        }
    );
}

#[test]
fn unknown_currency_is_ignored_with_a_note() {
    let body = event(
        "invoice.paid",
        paid_invoice("xyz", 125_000, json!(1_700_000_100)),
        None,
    );
    let ev = parse_event(&body, KEY).unwrap();
    assert_eq!(
        ev,
        ProviderEvent {
            refs: InvoiceRefs {
                metadata: Some("INV-2024-001".into()),
                number: Some("F-0042".into()),
                ..InvoiceRefs::default()
            },
            occurred_at: Some(at(1_700_000_100)),
            note: Some(
                "unknown currency XYZ: amount_paid 125000 (minor units) left unconverted; \
                 recorded, not applied"
                    .into()
            ),
            ..expected("invoice.paid", ProviderEventKind::Ignored, INVOICE_ID)
        }
    );
    // Same for a refund.
    let ch = patched(
        refunded_charge(json!(PI_ID), 500),
        json!({ "currency": "zzz" }),
    );
    let ev = parse_event(&event("charge.refunded", ch, None), KEY).unwrap();
    assert_eq!(ev.kind, ProviderEventKind::Ignored);
    assert!(ev.note.unwrap().starts_with("unknown currency ZZZ"));
}

#[test]
fn bad_amounts_are_ignored_with_a_note() {
    for (amount, why) in [
        (json!(-5), "negative"),
        (json!(12.5), "not an integer"),
        (json!("125000"), "not an integer"),
        (Value::Null, "not an integer"),
    ] {
        let inv = patched(
            paid_invoice("cop", 0, Value::Null),
            json!({ "amount_paid": amount }),
        );
        let ev = parse_event(&event("invoice.paid", inv, None), KEY).unwrap();
        assert_eq!(ev.kind, ProviderEventKind::Ignored, "{amount}");
        assert_eq!((ev.amount, &ev.currency), (None, &None));
        let note = ev.note.unwrap();
        assert!(note.contains(why), "{amount}: {note}");
    }
    // Huge but integral: converted exactly.
    let inv = paid_invoice("cop", i64::MAX, Value::Null);
    let ev = parse_event(&event("invoice.paid", inv, None), KEY).unwrap();
    assert_eq!(ev.amount, Some(dec("92233720368547758.07")));
}

#[test]
fn stripe_decimals_agree_with_plazo_currencies() {
    for c in Currency::all() {
        assert_eq!(stripe_decimals(c.code()), Some(c.minor_units()), "{c}");
    }
    assert_eq!(stripe_decimals("KWD"), Some(3));
    assert_eq!(stripe_decimals("ISK"), None);
}

#[test]
fn thin_event_is_ignored() {
    let body = json!({
        "id": "evt_test_65R9Ijk8",
        "object": "v2.core.event",
        "type": "v1.billing.meter.error_report_triggered",
        "livemode": false,
        "created": "2024-09-17T06:20:52.246Z",
        "related_object": {
            "id": "mtr_test_61R9IeP0",
            "type": "billing.meter",
            "url": "/v1/billing/meters/mtr_test_61R9IeP0"
        }
    });
    let ev = parse_event(&serde_json::to_vec(&body).unwrap(), KEY).unwrap();
    assert_eq!(ev.kind, ProviderEventKind::Ignored);
    assert_eq!(ev.event_id, "evt_test_65R9Ijk8");
    assert_eq!(ev.event_type, "v1.billing.meter.error_report_triggered");
    assert_eq!(ev.object_id, "mtr_test_61R9IeP0");
    assert_eq!(
        ev.occurred_at,
        Some("2024-09-17T06:20:52.246Z".parse().unwrap())
    );
    assert_eq!((ev.amount, ev.currency), (None, None));
    assert!(ev.note.unwrap().contains("thin event (v2.core.event)"));
}

#[test]
fn malformed_bodies_are_errors() {
    let inv = paid_invoice("cop", 1, Value::Null);
    let ok = serde_json::from_slice::<Value>(&event("invoice.paid", inv, None)).unwrap();
    let without = |path: &[&str]| {
        let mut v = ok.clone();
        let (last, parents) = path.split_last().unwrap();
        let mut cur = &mut v;
        for p in parents {
            cur = &mut cur[*p];
        }
        cur.as_object_mut().unwrap().remove(*last);
        serde_json::to_vec(&v).unwrap()
    };
    let with = |path: &[&str], val: Value| {
        let mut v = ok.clone();
        let mut cur = &mut v;
        for p in path {
            cur = &mut cur[*p];
        }
        *cur = val;
        serde_json::to_vec(&v).unwrap()
    };

    assert!(matches!(
        parse_event(b"{not json", KEY),
        Err(StripeParseError::NotJson(_))
    ));
    assert!(matches!(
        parse_event(b"", KEY),
        Err(StripeParseError::NotJson(_))
    ));
    assert_eq!(
        parse_event(b"[1,2]", KEY),
        Err(StripeParseError::NotAnObject)
    );
    let charge = serde_json::to_vec(&fixture("charge")).unwrap();
    assert_eq!(
        parse_event(&charge, KEY),
        Err(StripeParseError::NotAnEvent("charge".into()))
    );
    for (body, missing) in [
        (without(&["id"]), "id"),
        (with(&["id"], json!("")), "id"),
        (without(&["type"]), "type"),
        (with(&["type"], Value::Null), "type"),
        (without(&["data"]), "data"),
        (without(&["data", "object"]), "data.object"),
        (without(&["data", "object", "id"]), "data.object.id"),
    ] {
        let err = parse_event(&body, KEY).unwrap_err();
        assert_eq!(err, StripeParseError::Missing(missing));
        assert_eq!(err.to_string(), format!("Stripe event has no {missing}"));
    }
    for (body, field) in [
        (with(&["id"], json!(12)), "id"),
        (with(&["object"], json!(1)), "object"),
        (with(&["data"], json!("x")), "data"),
        (with(&["data", "object"], json!([])), "data.object"),
        (with(&["data", "object", "id"], json!({})), "data.object.id"),
    ] {
        let err = parse_event(&body, KEY).unwrap_err();
        assert!(
            matches!(err, StripeParseError::Invalid { field: f, .. } if f == field),
            "{field}: {err}"
        );
    }
    let err = parse_event(&event("invoice.paid", fixture("charge"), None), KEY).unwrap_err();
    assert_eq!(
        err,
        StripeParseError::UnexpectedObject {
            event_id: "evt_1".into(),
            event_type: "invoice.paid".into(),
            expected: "invoice",
            found: "charge".into(),
        }
    );
    // An unhandled type needs data.object but not its id.
    let body = with(&["type"], json!("customer.created"));
    let mut v: Value = serde_json::from_slice(&body).unwrap();
    v["data"]["object"] = json!({});
    let ev = parse_event(&serde_json::to_vec(&v).unwrap(), KEY).unwrap();
    assert_eq!(ev.object_id, "evt_1");
}

/// Field paths of an `invoice.paid` event that parsing reads.
const PATHS: &[&[&str]] = &[
    &["id"],
    &["object"],
    &["type"],
    &["created"],
    &["data"],
    &["data", "object"],
    &["data", "previous_attributes"],
    &["data", "object", "id"],
    &["data", "object", "object"],
    &["data", "object", "currency"],
    &["data", "object", "amount_paid"],
    &["data", "object", "metadata"],
    &["data", "object", "number"],
    &["data", "object", "status_transitions"],
    &["data", "object", "status_transitions", "paid_at"],
];

fn any_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
        Just(json!({ KEY: 5 })),
    ]
}

proptest! {
    #[test]
    fn parse_never_panics_on_mutated_events(
        event_type in prop_oneof![
            Just("invoice.paid"), Just("payment_intent.succeeded"),
            Just("checkout.session.completed"), Just("charge.refunded"), Just("x.y"),
        ],
        path in proptest::sample::select(PATHS),
        val in any_json(),
    ) {
        let mut v: Value = serde_json::from_slice(
            &event(event_type, paid_invoice("cop", 100, json!(1)), None),
        ).unwrap();
        let mut cur = &mut v;
        for p in path {
            if !cur.is_object() {
                break;
            }
            cur = &mut cur[*p];
        }
        *cur = val;
        let _ = parse_event(&serde_json::to_vec(&v).unwrap(), KEY);
    }

    #[test]
    fn parse_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_event(&bytes, KEY);
    }
}
