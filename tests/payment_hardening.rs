//! Issue 9, payments hardening, through the service layer on a real store.
//!
//! Item 3: amounts near the decimal maximum. Amounts are bounded to 15 integer digits per
//! currency and every sum is checked: a plan, a credit, a sum of payments past the maximum is
//! refused with a clear 422 (API) or recorded as a failed event (provider), never a panic,
//! never a retry loop, and nothing changes.
//!
//! Item 8: Stripe reports the same money as `invoice.paid` (`in_…`) and
//! `payment_intent.succeeded` (`pi_…`): it is applied once, in either order.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use jiff::Timestamp;
use plazo::domain::{ClientId, InboxPayload, InboxState, Invoice, InvoiceId};
use plazo::payments::{InvoiceRefs, ProviderEvent, ProviderEventKind};
use plazo::service::{
    ClientInput, PaymentInput, PaymentOutcome, PlanInput, PolicyHandle, ServiceError, apply_event,
    enqueue, make_plan, record_payment, upsert_client,
};
use plazo::store::Store;

/// Most a COP amount may be.
const MAX: &str = "999999999999999.99";
/// `Decimal::MAX`, which the old code accepted as an amount.
const DEC_MAX: &str = "79228162514264337593543950335";

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    policy: PolicyHandle,
    now: Timestamp,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let text = common::inproc::one_step_policy();
        let (store, policy) = common::inproc::store_with_policy(dir.path(), &text);
        let w = World {
            _dir: dir,
            store,
            policy,
            now: "2026-03-01T15:00:00Z".parse().unwrap(),
        };
        let input: ClientInput = serde_json::from_value(serde_json::json!({
            "name": "Ana", "email": "ana@example.co"
        }))
        .unwrap();
        let p = w.policy.current();
        upsert_client(
            &w.store,
            &p.policy,
            &ClientId::new("c-1").unwrap(),
            input,
            w.now,
        )
        .unwrap();
        w
    }

    fn invoice(&self, id: &str, amount: &str) -> Result<(), ServiceError> {
        let body = serde_json::json!({
            "client_id": "c-1", "number": format!("FV-{id}"), "currency": "COP",
            "amount": amount, "due_at": "2026-03-20"
        });
        common::inproc::put_invoice(&self.store, &self.policy, id, body, self.now).map(|_| ())
    }

    fn pay(&self, id: &str, amount: &str, reference: &str) -> Result<PaymentOutcome, ServiceError> {
        let input: PaymentInput = serde_json::from_value(serde_json::json!({
            "amount": amount, "currency": "COP", "reference": reference
        }))
        .unwrap();
        let p = self.policy.current();
        record_payment(
            &self.store,
            &p.policy,
            &InvoiceId::new(id).unwrap(),
            &input,
            "api",
            None,
            self.now,
        )
    }

    fn inv(&self, id: &str) -> Invoice {
        self.store
            .invoice(&InvoiceId::new(id).unwrap())
            .unwrap()
            .unwrap()
    }

    /// Receives and applies a raw Stripe event body; returns the entry's state and detail.
    fn stripe(&self, body: serde_json::Value) -> (InboxState, String) {
        let raw = serde_json::to_vec(&body).unwrap();
        let ev = plazo::payments::stripe::parse_event(&raw, "plazo_invoice_id").unwrap();
        let key = format!("stripe:{}", ev.event_id);
        enqueue(
            &self.store,
            &key,
            InboxPayload::Event {
                event: Box::new(ev.clone()),
            },
            self.now,
        )
        .unwrap();
        let p = self.policy.current();
        apply_event(&self.store, &p.policy, &key, &ev, self.now).unwrap();
        let e = self.store.inbox_entry(&key).unwrap().unwrap();
        (e.state, e.detail.unwrap_or_default())
    }

    fn credit(&self) -> Option<String> {
        let c = self
            .store
            .client(&ClientId::new("c-1").unwrap())
            .unwrap()
            .unwrap();
        c.credits.get("COP").map(|c| c.amount.to_string())
    }

    /// Receives and applies a Stripe-like payment event of `amount` COP on `invoice`; returns
    /// the inbox entry's state and detail.
    fn provider_payment(&self, n: u32, invoice: &str, amount: &str) -> (InboxState, String) {
        let json = serde_json::json!({
            "provider": "stripe",
            "event_id": format!("evt_{n}"),
            "event_type": "payment_intent.succeeded",
            "kind": "paid",
            "object_id": format!("pi_{n}"),
            "amount": amount,
            "currency": "COP",
            "refs": { "metadata": invoice },
        });
        let ev: ProviderEvent = serde_json::from_value(json).unwrap();
        assert_eq!(ev.kind, ProviderEventKind::Paid);
        assert_eq!(
            ev.refs,
            InvoiceRefs {
                metadata: Some(invoice.into()),
                ..InvoiceRefs::default()
            }
        );
        let key = format!("stripe:evt_{n}");
        enqueue(
            &self.store,
            &key,
            InboxPayload::Event {
                event: Box::new(ev.clone()),
            },
            self.now,
        )
        .unwrap();
        let p = self.policy.current();
        let _ = apply_event(&self.store, &p.policy, &key, &ev, self.now);
        let e = self.store.inbox_entry(&key).unwrap().unwrap();
        (e.state, e.detail.unwrap_or_default())
    }
}

fn invalid(r: Result<impl std::fmt::Debug, ServiceError>) -> (String, String) {
    match r {
        Err(ServiceError::Invalid { field, message }) => (field, message),
        other => panic!("expected a 422, got {other:?}"),
    }
}

#[test]
fn an_amount_past_the_maximum_is_refused_with_the_bound() {
    let w = World::new();
    let (field, msg) = invalid(w.invoice("inv-1", DEC_MAX));
    assert_eq!(field, "amount");
    assert!(
        msg.contains(MAX) && msg.contains("15 integer digits"),
        "{msg}"
    );
    assert!(w.invoice("inv-1", "1000000000000000").is_err());
    w.invoice("inv-1", MAX).unwrap();
    let (field, msg) = invalid(w.pay("inv-1", DEC_MAX, "a"));
    assert_eq!(field, "amount");
    assert!(msg.contains(MAX), "{msg}");
    assert!(w.inv("inv-1").payments.is_empty(), "nothing changed");
}

/// A plan whose instalments add past the decimal maximum was a 500 (overflow panic).
#[test]
fn a_plan_adding_past_the_maximum_is_a_422_not_a_panic() {
    let w = World::new();
    w.invoice("inv-1", "1000").unwrap();
    let input: PlanInput = serde_json::from_value(serde_json::json!({
        "instalments": [
            { "date": "2026-04-01", "amount": DEC_MAX },
            { "date": "2026-05-01", "amount": DEC_MAX },
        ]
    }))
    .unwrap();
    let p = w.policy.current();
    let (field, msg) = invalid(make_plan(
        &w.store,
        &p.policy,
        &InvoiceId::new("inv-1").unwrap(),
        input,
        w.now,
    ));
    assert_eq!(field, "instalments[0].amount");
    assert!(msg.contains("too large"), "{msg}");
    assert!(w.inv("inv-1").arrangements.is_empty());
    // Each within the maximum, their sum past it.
    let input: PlanInput = serde_json::from_value(serde_json::json!({
        "instalments": [
            { "date": "2026-04-01", "amount": MAX },
            { "date": "2026-05-01", "amount": MAX },
        ]
    }))
    .unwrap();
    let (field, msg) = invalid(make_plan(
        &w.store,
        &p.policy,
        &InvoiceId::new("inv-1").unwrap(),
        input,
        w.now,
    ));
    assert_eq!(field, "instalments");
    assert!(msg.contains("sum of the instalments"), "{msg}");
    assert!(w.inv("inv-1").arrangements.is_empty());
}

/// A credit past the maximum made every later overpayment of the client a 500.
#[test]
fn a_credit_past_the_maximum_is_refused_and_changes_nothing() {
    let w = World::new();
    w.invoice("inv-1", "100").unwrap();
    w.pay("inv-1", MAX, "a").unwrap();
    assert_eq!(w.credit().as_deref(), Some("999999999999899.99"));
    w.invoice("inv-2", "100").unwrap();
    let (field, msg) = invalid(w.pay("inv-2", MAX, "b"));
    assert_eq!(field, "amount");
    assert!(
        msg.contains("client's credit") && msg.contains(MAX),
        "{msg}"
    );
    assert!(w.inv("inv-2").payments.is_empty(), "nothing changed");
    assert_eq!(w.inv("inv-2").balance.to_string(), "100");
    assert_eq!(w.credit().as_deref(), Some("999999999999899.99"));
    // Smaller overpayments still work.
    w.pay("inv-2", "100", "c").unwrap();
}

/// Payments adding past the maximum on one invoice.
#[test]
fn payments_summing_past_the_maximum_are_refused() {
    let w = World::new();
    w.invoice("inv-1", MAX).unwrap();
    w.pay("inv-1", MAX, "a").unwrap();
    let (_, msg) = invalid(w.pay("inv-1", "1", "b"));
    assert!(msg.contains("sum of the payments"), "{msg}");
    assert_eq!(w.inv("inv-1").payments.len(), 1);
}

/// A signed provider event whose credit would pass the maximum was retried forever (the apply
/// panicked or failed every pass). Now it is failed for good, with the reason, and nothing
/// else changes.
#[test]
fn a_provider_payment_past_the_maximum_is_recorded_failed() {
    let w = World::new();
    w.invoice("inv-1", "100").unwrap();
    w.invoice("inv-2", "100").unwrap();
    let (state, _) = w.provider_payment(1, "inv-1", MAX);
    assert_eq!(state, InboxState::Applied);
    let credit = w.credit();
    let (state, detail) = w.provider_payment(2, "inv-2", MAX);
    assert_eq!(state, InboxState::Failed, "{detail}");
    assert!(detail.contains("client's credit"), "{detail}");
    assert_eq!(w.credit(), credit);
    assert!(w.inv("inv-2").payments.is_empty());
    let (state, detail) = w.provider_payment(3, "inv-2", DEC_MAX);
    assert_eq!(state, InboxState::Failed, "{detail}");
    assert!(
        w.store.inbox_queue().unwrap().is_empty(),
        "nothing left to retry"
    );
}

// ---------------------------------------------------------------------------------------------
// Item 8: one payment, two Stripe events
// ---------------------------------------------------------------------------------------------

/// `invoice.paid` for 1,250,000.00 COP on inv-1, paid by `pi_1`. `old_api` puts the payment
/// intent on the invoice (API versions before 2025-03-31); otherwise it is in the invoice's
/// `payments` list (InvoicePayment objects), as newer versions send it.
fn invoice_paid(old_api: bool) -> serde_json::Value {
    let mut obj = serde_json::json!({
        "id": "in_1", "object": "invoice", "currency": "cop", "amount_paid": 125_000_000,
        "number": "FV-inv-1", "metadata": { "plazo_invoice_id": "inv-1" },
        "status_transitions": { "paid_at": 1_772_377_200 },
    });
    if old_api {
        obj["payment_intent"] = "pi_1".into();
        obj["charge"] = "ch_1".into();
    } else {
        obj["payments"] = serde_json::json!({
            "object": "list",
            "data": [{ "object": "invoice_payment", "id": "inpay_1",
                       "payment": { "type": "payment_intent", "payment_intent": "pi_1" } }]
        });
    }
    serde_json::json!({
        "id": "evt_in", "object": "event", "type": "invoice.paid", "created": 1_772_377_200,
        "data": { "object": obj }
    })
}

/// `payment_intent.succeeded` for the same money (Stripe copies the invoice's metadata).
fn intent_succeeded(old_api: bool) -> serde_json::Value {
    let mut obj = serde_json::json!({
        "id": "pi_1", "object": "payment_intent", "currency": "cop", "status": "succeeded",
        "amount_received": 125_000_000, "latest_charge": "ch_1",
        "metadata": { "plazo_invoice_id": "inv-1" },
    });
    if old_api {
        obj["invoice"] = "in_1".into();
    }
    serde_json::json!({
        "id": "evt_pi", "object": "event", "type": "payment_intent.succeeded",
        "created": 1_772_377_201, "data": { "object": obj }
    })
}

fn one_payment_whichever_comes_first(invoice_first: bool, old_api: bool) {
    let w = World::new();
    w.invoice("inv-1", "1250000").unwrap();
    let (first, second) = if invoice_first {
        (invoice_paid(old_api), intent_succeeded(old_api))
    } else {
        (intent_succeeded(old_api), invoice_paid(old_api))
    };
    let (state, detail) = w.stripe(first);
    assert_eq!(state, InboxState::Applied, "{detail}");
    let (state, detail) = w.stripe(second);
    assert_eq!(state, InboxState::Applied, "{detail}");
    assert!(detail.contains("already applied"), "{detail}");
    let inv = w.inv("inv-1");
    assert_eq!(inv.payments.len(), 1, "{:?}", inv.payments);
    assert!(inv.balance.is_zero());
    assert_eq!(w.credit(), None, "the second event is not an overpayment");
}

#[test]
fn invoice_paid_then_payment_intent_succeeded_is_one_payment() {
    one_payment_whichever_comes_first(true, false);
    one_payment_whichever_comes_first(true, true);
}

#[test]
fn payment_intent_succeeded_then_invoice_paid_is_one_payment() {
    one_payment_whichever_comes_first(false, false);
    one_payment_whichever_comes_first(false, true);
}

#[test]
fn two_different_payments_are_still_both_applied() {
    let w = World::new();
    w.invoice("inv-1", "2500000").unwrap();
    w.stripe(invoice_paid(true));
    let mut other = intent_succeeded(false);
    other["id"] = "evt_pi_2".into();
    other["data"]["object"]["id"] = "pi_2".into();
    other["data"]["object"]["latest_charge"] = "ch_2".into();
    let (state, detail) = w.stripe(other);
    assert_eq!(state, InboxState::Applied, "{detail}");
    assert_eq!(w.inv("inv-1").payments.len(), 2);
    assert!(w.inv("inv-1").balance.is_zero());
}
