//! The one in-process plazo under a manual clock: a real sled store, the real dispatcher driven
//! by `dispatch_due_once`, recording channels for email, SMS and (opt-in) WhatsApp, and the
//! service functions the API calls. Nothing sleeps for real.

use std::sync::Arc;

use jiff::Timestamp;
use plazo::channels::SharedChannel;
use plazo::clock::{Clock, ManualClock};
use plazo::config::DispatchConfig;
use plazo::dispatch::{ChannelRoutes, Dispatcher};
use plazo::domain::{
    Attempt, AttemptOutcome, Client, ClientId, DeliveryState, Invoice, InvoiceId, Reminder,
};
use plazo::service::{
    ClientInput, DeliveryReport, PaymentInput, PaymentOutcome, PolicyHandle, ReceiptOutcome,
    ServiceError, apply_receipt, record_payment, upsert_client,
};
use plazo::store::Store;

use super::rec::RecChannel;

pub fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// The amount of [`Sim::invoice_due`]'s invoices (COP).
pub const AMOUNT: &str = "1250000";

/// What varies between simulations.
pub struct SimOptions {
    /// `DispatchConfig::max_attempts`. Default 3.
    pub max_attempts: u32,
    /// The channel behind the `sms` route. Default: a plain recording channel `rec-sms`.
    pub sms: RecChannel,
    /// Route `whatsapp` to [`Sim::wa`] (`rec-wa`). Default: no WhatsApp route.
    pub whatsapp: bool,
    /// A channel of the test's own behind the `email` route (one that panics, real SMTP...)
    /// instead of the recording [`Sim::email`], which then receives nothing. Default: none.
    pub email: Option<SharedChannel>,
    /// Route `sms` (to [`SimOptions::sms`]). Default true.
    pub sms_route: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            max_attempts: 3,
            sms: RecChannel::new("rec-sms"),
            whatsapp: false,
            email: None,
            sms_route: true,
        }
    }
}

pub struct Sim {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub policy: PolicyHandle,
    pub clock: ManualClock,
    pub email: RecChannel,
    pub sms: RecChannel,
    /// The WhatsApp channel; routed only with [`SimOptions::whatsapp`].
    pub wa: RecChannel,
    pub d: Arc<Dispatcher>,
}

impl Sim {
    /// A store in a fresh temporary directory, `policy` (TOML text), the clock at `now`.
    pub fn new(policy: &str, now: &str) -> Sim {
        Sim::with(policy, now, SimOptions::default())
    }

    /// [`Sim::new`] with `options`.
    pub fn with(policy: &str, now: &str, options: SimOptions) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let (store, policy) = super::inproc::store_with_policy(dir.path(), policy);
        let clock = ManualClock::new(ts(now));
        let email = RecChannel::new("rec-email");
        let sms = options.sms;
        let wa = RecChannel::new("rec-wa");
        let mut routes = ChannelRoutes::default();
        match options.email {
            Some(custom) => routes.insert("email", custom),
            None => routes.insert("email", Arc::new(email.clone())),
        }
        if options.sms_route {
            routes.insert("sms", Arc::new(sms.clone()));
        }
        if options.whatsapp {
            routes.insert("whatsapp", Arc::new(wa.clone()));
        }
        let d = Arc::new(Dispatcher {
            store: store.clone(),
            policy: policy.clone(),
            routes,
            clock: Arc::new(clock.clone()),
            config: DispatchConfig {
                max_attempts: options.max_attempts,
                backoff_base_secs: 60,
                backoff_max_secs: 3600,
                ..DispatchConfig::default()
            },
            wake: Arc::new(plazo::dispatch::Wake::default()),
            unsubscribe: None,
            turns: Default::default(),
            statements: Default::default(),
            telemetry: Default::default(),
            shared: None,
        });
        Sim {
            dir,
            store,
            policy,
            clock,
            email,
            sms,
            wa,
            d,
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn set(&self, t: &str) {
        self.clock.set(ts(t));
    }

    /// Moves the clock to `t` and dispatches what is due then.
    pub async fn at(&self, t: &str) -> usize {
        self.at_ts(ts(t)).await
    }

    pub async fn at_ts(&self, t: Timestamp) -> usize {
        self.clock.set(t);
        self.d.dispatch_due_once().await.unwrap()
    }

    pub fn client(&self, id: &str, json: serde_json::Value) {
        let input: ClientInput = serde_json::from_value(json).unwrap();
        let p = self.policy.current();
        upsert_client(
            &self.store,
            &p.policy,
            &ClientId::new(id).unwrap(),
            input,
            self.now(),
        )
        .unwrap();
    }

    /// Creates or updates invoice `id` (COP) for `client`.
    pub fn invoice(&self, id: &str, client: &str, due: &str, amount: &str) -> Option<Timestamp> {
        let body = serde_json::json!({
            "client_id": client, "number": format!("FV-{id}"), "currency": "COP",
            "amount": amount, "due_at": due,
            "payment_url": "https://pagos.example.co/x"
        });
        super::inproc::put_invoice(&self.store, &self.policy, id, body, self.now()).unwrap()
    }

    /// Creates or updates invoice `id` of [`AMOUNT`] COP for `client`.
    pub fn invoice_due(&self, id: &str, client: &str, due: &str) -> Option<Timestamp> {
        self.invoice(id, client, due, AMOUNT)
    }

    /// Applies a Twilio delivery receipt for provider message `id`, now.
    pub fn receipt(&self, id: &str, state: DeliveryState, code: Option<i64>) -> ReceiptOutcome {
        let p = self.policy.current();
        apply_receipt(
            &self.store,
            &p.policy,
            &DeliveryReport {
                provider: "twilio".into(),
                provider_message_id: id.into(),
                state,
                error_code: code,
                error_text: code.map(|_| "Unreachable destination handset".to_owned()),
            },
            self.now(),
        )
        .unwrap()
    }

    /// Records a payment of the whole open balance (no amount given), made now.
    pub fn pay_in_full(&self, id: &str, reference: &str) -> PaymentOutcome {
        self.payment(id, None, reference, "test").unwrap()
    }

    /// Records a payment of `amount` COP made now.
    pub fn pay(&self, id: &str, amount: &str, reference: &str) -> PaymentOutcome {
        self.try_pay(id, amount, reference).unwrap()
    }

    pub fn try_pay(
        &self,
        id: &str,
        amount: &str,
        reference: &str,
    ) -> Result<PaymentOutcome, ServiceError> {
        self.payment(id, Some(amount), reference, "api")
    }

    fn payment(
        &self,
        id: &str,
        amount: Option<&str>,
        reference: &str,
        source: &str,
    ) -> Result<PaymentOutcome, ServiceError> {
        let p = self.policy.current();
        record_payment(
            &self.store,
            &p.policy,
            &InvoiceId::new(id).unwrap(),
            &PaymentInput {
                amount: amount.map(str::to_owned),
                currency: "COP".into(),
                paid_at: None,
                reference: reference.into(),
            },
            source,
            None,
            self.now(),
        )
    }

    /// A promise by phone of `amount` on invoice `id` by `date` (a date or an instant), made now.
    pub fn promise(&self, id: &str, amount: &str, date: &str) {
        self.try_promise(id, amount, date).unwrap();
    }

    /// Applies a Stripe `charge.refunded` of `amount` COP for invoice `id` through the
    /// payments inbox, as the webhook would.
    pub fn refund(&self, id: &str, amount: &str, event_id: &str) {
        self.try_refund(id, amount, event_id).unwrap();
    }

    /// [`Sim::refund`], answering the service's refusal instead of panicking.
    pub fn try_refund(&self, id: &str, amount: &str, event_id: &str) -> Result<(), ServiceError> {
        use plazo::payments::{InvoiceRefs, ProviderEvent, ProviderEventKind};
        let ev = ProviderEvent {
            provider: "stripe".into(),
            event_id: event_id.into(),
            event_type: "charge.refunded".into(),
            kind: ProviderEventKind::Refunded,
            object_id: "ch_1".into(),
            amount: Some(amount.parse().unwrap()),
            currency: Some("COP".into()),
            refs: InvoiceRefs {
                metadata: Some(id.into()),
                ..InvoiceRefs::default()
            },
            occurred_at: None,
            note: None,
            same_payment: Vec::new(),
        };
        let key = format!("stripe:{event_id}");
        let p = self.policy.current();
        plazo::service::enqueue(
            &self.store,
            &key,
            plazo::domain::InboxPayload::Event {
                event: Box::new(ev.clone()),
            },
            self.now(),
        )
        .unwrap();
        plazo::service::apply_event(&self.store, &p.policy, &key, &ev, self.now()).map(|_| ())
    }

    /// [`Sim::promise`], answering the service's refusal instead of panicking.
    pub fn try_promise(&self, id: &str, amount: &str, date: &str) -> Result<(), ServiceError> {
        let p = self.policy.current();
        plazo::service::make_promise(
            &self.store,
            &p.policy,
            &InvoiceId::new(id).unwrap(),
            plazo::service::PromiseInput {
                amount: amount.into(),
                date: date.into(),
                channel: Some("phone".into()),
                note: None,
            },
            self.now(),
        )
        .map(|_| ())
    }

    /// [`Sim::invoice`], answering the service's refusal instead of panicking.
    pub fn try_invoice(
        &self,
        id: &str,
        client: &str,
        due: &str,
        amount: &str,
    ) -> Result<Option<Timestamp>, ServiceError> {
        let body = serde_json::json!({
            "client_id": client, "number": format!("FV-{id}"), "currency": "COP",
            "amount": amount, "due_at": due,
            "payment_url": "https://pagos.example.co/x"
        });
        super::inproc::put_invoice(&self.store, &self.policy, id, body, self.now())
    }

    /// `POST /v1/invoices/{id}/hand-off|write-off|void|recall` at the service level, now.
    pub fn escalate(
        &self,
        id: &str,
        request: plazo::service::EscalationRequest,
        reason: Option<&str>,
    ) -> Result<plazo::service::Escalated, ServiceError> {
        let p = self.policy.current();
        plazo::service::escalate_invoice(
            &self.store,
            &p.policy,
            &InvoiceId::new(id).unwrap(),
            request,
            plazo::service::EscalationInput {
                partner: None,
                reason: reason.map(str::to_owned),
            },
            self.now(),
        )
    }

    /// Checks that the facts plazo kept, change by change, on client `id` are those its
    /// history gives: the ledger equals [`plazo::domain::FactsLedger::recompute`] over its
    /// invoices, the broken-promise count equals its broken arrangements, and the facts the
    /// API and the rules read agree. Says what differs.
    pub fn facts_drift(&self, id: &str) -> Result<(), String> {
        use plazo::domain::{ArrangementState, FactsLedger, behaviour_of};
        let client = self.client_record(id);
        let invoices: Vec<Invoice> = self
            .store
            .invoice_ids_of_client(&client.id)
            .unwrap()
            .iter()
            .filter_map(|i| self.store.invoice(i).unwrap())
            .filter(|i| i.client_id == client.id)
            .collect();
        let p = self.policy.current();
        let zone = plazo::schedule::client_zone(&p.policy, &client);
        let recomputed = FactsLedger::recompute(&invoices, &zone, client.facts.last_inbound_at);
        if client.facts != recomputed {
            return Err(format!(
                "ledger kept:\n{:#?}\nrecomputed from the invoices:\n{recomputed:#?}",
                client.facts
            ));
        }
        let broken = invoices
            .iter()
            .flat_map(|i| &i.arrangements)
            .filter(|a| a.state == ArrangementState::Broken)
            .count();
        if client.broken_promises as usize != broken {
            return Err(format!(
                "broken_promises kept {} but {broken} arrangements are broken",
                client.broken_promises
            ));
        }
        let last_paid = p.policy.facts.last_paid;
        let kept = behaviour_of(&client, last_paid, self.now());
        let fresh = recomputed.facts(last_paid, u32::try_from(broken).unwrap(), self.now());
        if kept != fresh {
            return Err(format!("facts kept {kept:#?}\nfacts recomputed {fresh:#?}"));
        }
        Ok(())
    }

    pub fn inv(&self, id: &str) -> Invoice {
        self.store
            .invoice(&InvoiceId::new(id).unwrap())
            .unwrap()
            .unwrap()
    }

    pub fn client_record(&self, id: &str) -> Client {
        self.store
            .client(&ClientId::new(id).unwrap())
            .unwrap()
            .unwrap()
    }

    pub fn pending(&self, id: &str) -> Option<Reminder> {
        let inv = self.inv(id);
        inv.pending
            .map(|rid| self.store.reminder(&inv.id, &rid).unwrap().unwrap())
    }

    pub fn timeline(&self, id: &str) -> Vec<Attempt> {
        self.store.timeline(&InvoiceId::new(id).unwrap()).unwrap()
    }

    pub fn outcomes(&self, id: &str, outcome: AttemptOutcome) -> Vec<Attempt> {
        self.timeline(id)
            .into_iter()
            .filter(|a| a.outcome == outcome)
            .collect()
    }

    /// Names of the steps sent so far on the email channel, in order.
    pub fn emailed_steps(&self) -> Vec<String> {
        self.email.sent().into_iter().map(|o| o.step).collect()
    }

    /// Timeline lines whose detail contains `text`.
    pub fn lines_with(&self, id: &str, text: &str) -> Vec<Attempt> {
        self.timeline(id)
            .into_iter()
            .filter(|a| a.detail.as_deref().is_some_and(|d| d.contains(text)))
            .collect()
    }
}
