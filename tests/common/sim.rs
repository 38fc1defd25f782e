//! An in-process plazo under a manual clock: a real sled store, the real dispatcher driven by
//! `dispatch_due_once`, recording channels for email and SMS, and the service functions the
//! API calls. Nothing sleeps for real.

use std::sync::Arc;

use jiff::Timestamp;
use plazo::clock::{Clock, ManualClock};
use plazo::config::DispatchConfig;
use plazo::dispatch::{ChannelRoutes, Dispatcher};
use plazo::domain::{Attempt, AttemptOutcome, Client, ClientId, Invoice, InvoiceId, Reminder};
use plazo::policy::parse_policy;
use plazo::service::{
    ClientInput, InvoiceInput, PaymentInput, PaymentOutcome, PolicyHandle, ServiceError,
    record_payment, upsert_client, upsert_invoice,
};
use plazo::store::{Store, StoreOptions};
use tokio::sync::Notify;

use super::rec::RecChannel;

pub fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub struct Sim {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub policy: PolicyHandle,
    pub clock: ManualClock,
    pub email: RecChannel,
    pub sms: RecChannel,
    pub d: Arc<Dispatcher>,
}

impl Sim {
    /// A store in a fresh temporary directory, `policy` (TOML text), the clock at `now`.
    pub fn new(policy: &str, now: &str) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, policy).unwrap();
        let policy = PolicyHandle::new(parse_policy(policy, &path).unwrap());
        let store = Store::open(&dir.path().join("db"), StoreOptions::default()).unwrap();
        let clock = ManualClock::new(ts(now));
        let email = RecChannel::new("rec-email");
        let sms = RecChannel::new("rec-sms");
        let mut routes = ChannelRoutes::default();
        routes.insert("email", Arc::new(email.clone()));
        routes.insert("sms", Arc::new(sms.clone()));
        let d = Arc::new(Dispatcher {
            store: store.clone(),
            policy: policy.clone(),
            routes,
            clock: Arc::new(clock.clone()),
            config: DispatchConfig {
                max_attempts: 3,
                backoff_base_secs: 60,
                backoff_max_secs: 3600,
                ..DispatchConfig::default()
            },
            wake: Arc::new(Notify::new()),
            unsubscribe: None,
        });
        Sim {
            dir,
            store,
            policy,
            clock,
            email,
            sms,
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
        let input: InvoiceInput = serde_json::from_value(serde_json::json!({
            "client_id": client, "number": format!("FV-{id}"), "currency": "COP",
            "amount": amount, "due_at": due,
            "payment_url": "https://pagos.example.co/x"
        }))
        .unwrap();
        let p = self.policy.current();
        upsert_invoice(
            &self.store,
            &p.policy,
            &InvoiceId::new(id).unwrap(),
            input,
            self.now(),
        )
        .unwrap()
        .2
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
        let p = self.policy.current();
        record_payment(
            &self.store,
            &p.policy,
            &InvoiceId::new(id).unwrap(),
            &PaymentInput {
                amount: Some(amount.to_owned()),
                currency: "COP".into(),
                paid_at: None,
                reference: reference.into(),
            },
            "api",
            None,
            self.now(),
        )
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
        self.inv(id)
            .pending
            .map(|rid| self.store.reminder(&rid).unwrap().unwrap())
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
