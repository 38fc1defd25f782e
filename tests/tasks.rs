//! Call tasks and replies that pause the chase: a `call` step and `on_exhausted = "task"` open
//! call tasks through the dispatcher (manual clock), inside the contact window, once per
//! invoice, cancelled when the invoice is paid; over HTTP, the queue is ordered by priority
//! and filtered, claims conflict and expire, each outcome acts on the invoice, bad input
//! changes nothing; a signed Twilio "ya pagué" pauses the client's open invoices and opens
//! one review task, once.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests may read the real clock

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use common::sim::Sim;
use common::{step, test_policy};
use plazo::domain::{InvoiceStatus, TaskKind, TaskState};
use plazo::http::{AppParts, AppState, ProviderHooks, router};
use serde_json::{Value, json};

// ---- Through the dispatcher -----------------------------------------------------------------

fn sim_policy(extra_steps: &[String], on_exhausted: Option<&str>) -> String {
    let mut steps = vec![step("standard", "due_today", "0d", None, &["email"])];
    steps.extend_from_slice(extra_steps);
    let mut p = test_policy(
        "America/Bogota",
        "es",
        ("08:00", "19:00"),
        &["standard"],
        &steps,
    );
    if let Some(o) = on_exhausted {
        p = p.replacen(
            "[[cadences.standard.steps]]",
            &format!("[cadences.standard]\non_exhausted = \"{o}\"\n\n[[cadences.standard.steps]]"),
            1,
        );
    }
    p
}

fn sim_start(policy: &str) -> Sim {
    let sim = Sim::new(policy, "2026-03-10T12:00:00Z");
    sim.client(
        "cli-1",
        json!({"name": "María Pérez", "email": "maria@cliente.example.co", "phone": "+573001234567"}),
    );
    sim.invoice("inv-1", "cli-1", "2026-03-16", "1000000");
    sim
}

#[tokio::test]
async fn a_call_step_opens_one_task_inside_the_window_and_a_payment_cancels_it() {
    // A call at 20:00 local (outside the 08:00-19:00 window), then a task step the next day.
    let call = "[[cadences.standard.steps]]\nname = \"first_call\"\noffset = \"+5d\"\nat = \"20:00\"\nchannels = [\"call\"]\n\n".to_owned();
    let again = "[[cadences.standard.steps]]\nname = \"second_call\"\noffset = \"+6d\"\naction = \"task\"\n\n".to_owned();
    let sim = sim_start(&sim_policy(&[call, again], None));
    assert_eq!(sim.at("2026-03-16T14:00:00Z").await, 1);
    assert!(sim.store.live_tasks().unwrap().is_empty());
    // 20:00 in Bogotá on the 21st is outside the window: the step waits for 08:00 the next
    // morning, and so is the task due.
    assert_eq!(sim.at("2026-03-22T01:00:00Z").await, 0);
    assert!(sim.store.live_tasks().unwrap().is_empty());
    assert_eq!(sim.at("2026-03-22T13:00:00Z").await, 1);
    let tasks = sim.store.live_tasks().unwrap();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let t = &tasks[0];
    assert_eq!(t.kind, TaskKind::Call);
    assert_eq!(t.state, TaskState::Open);
    assert_eq!(t.invoice_id.as_ref().unwrap().as_str(), "inv-1");
    assert_eq!(t.client_id.as_str(), "cli-1");
    assert_eq!(t.segment, "standard");
    assert_eq!(t.attempt, 1);
    assert_eq!(t.due_at.to_string(), "2026-03-22T13:00:00Z");
    // Balance 1,000,000 × 6 days overdue (the 22nd, local).
    assert_eq!(t.priority.to_string(), "6000000");
    assert!(
        t.reason.contains("step first_call of cadence standard"),
        "{}",
        t.reason
    );
    assert_eq!(
        sim.lines_with("inv-1", &format!("call task {} opened", t.id))
            .len(),
        1
    );
    assert!(sim.emailed_steps() == ["due_today"], "a call sends nothing");

    // The next task step while that call is still open: no duplicate, said on the timeline.
    assert_eq!(sim.at("2026-03-22T14:00:00Z").await, 1);
    assert_eq!(sim.store.live_tasks().unwrap().len(), 1);
    assert_eq!(
        sim.lines_with(
            "inv-1",
            &format!("no new call task, call task {} is still open", t.id)
        )
        .len(),
        1
    );

    // Paid in full: the open call is cancelled, with the reason.
    sim.pay_in_full("inv-1", "tx-1");
    assert_eq!(sim.inv("inv-1").status, InvoiceStatus::Paid);
    assert!(sim.store.live_tasks().unwrap().is_empty());
    let stored = sim.store.task(&t.id).unwrap().unwrap();
    assert_eq!(stored.state, TaskState::Cancelled);
    assert_eq!(stored.note.as_deref(), Some("the invoice is paid in full"));
    assert_eq!(
        sim.lines_with(
            "inv-1",
            &format!("call task {} cancelled: the invoice is paid in full", t.id)
        )
        .len(),
        1
    );
}

#[tokio::test]
async fn on_exhausted_task_opens_a_call_and_the_invoice_stays_open() {
    let firm = step("standard", "firm_overdue", "+10d", None, &["email"]);
    let sim = sim_start(&sim_policy(&[firm], Some("task")));
    // A client with no phone gets no call task; the timeline says why.
    sim.client(
        "cli-2",
        json!({"name": "Pedro Gómez", "email": "pedro@cliente.example.co"}),
    );
    sim.invoice("inv-2", "cli-2", "2026-03-16", "500000");
    assert_eq!(sim.at("2026-03-16T14:00:00Z").await, 2);
    assert!(sim.store.live_tasks().unwrap().is_empty());
    assert_eq!(sim.at("2026-03-26T14:00:00Z").await, 2);
    let tasks = sim.store.live_tasks().unwrap();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0].invoice_id.as_ref().unwrap().as_str(), "inv-1");
    assert_eq!(tasks[0].reason, "cadence standard exhausted");
    assert_eq!(
        tasks[0].due_at,
        sim.now(),
        "09:00 local is inside the window"
    );
    assert_eq!(sim.inv("inv-1").status, InvoiceStatus::Open);
    assert_eq!(
        sim.lines_with("inv-1", "on_exhausted opens a call task")
            .len(),
        1
    );
    assert_eq!(
        sim.lines_with("inv-2", "no call task, the client has no phone on file")
            .len(),
        1
    );
    assert_eq!(sim.inv("inv-2").status, InvoiceStatus::Open);
}

// ---- Over HTTP ------------------------------------------------------------------------------

const TOKEN: &str = "tasks-test-token-7c1e";
const TWILIO_TOKEN: &str = "twilio-token-tasks";
const PUBLIC: &str = "https://cobros.example.co";
/// 10:00 in Bogotá: inside the 08:00-19:00 window.
const NOW: &str = "2026-03-10T15:00:00Z";

/// Two segments whose one step (due date, email) has long passed for the invoices below, so
/// `on_exhausted = "task"` opens a call as each invoice is created.
fn http_policy() -> String {
    let mut p = test_policy(
        "America/Bogota",
        "es",
        ("08:00", "19:00"),
        &["standard", "vip"],
        &[
            step("standard", "due_today", "0d", None, &["email"]),
            step("vip", "due_today", "0d", None, &["email"]),
        ],
    );
    for c in ["standard", "vip"] {
        p = p.replacen(
            &format!("[[cadences.{c}.steps]]"),
            &format!("[cadences.{c}]\non_exhausted = \"task\"\n\n[[cadences.{c}.steps]]"),
            1,
        );
    }
    p.push_str(
        "[tasks]\nclaim_timeout = \"30m\"\nno_answer = { attempts = 2, spacing = \"4h\" }\n",
    );
    p
}

struct Api {
    sim: Sim,
    base: String,
    http: reqwest::Client,
}

/// The API served over a [`Sim`]'s store, policy and clock (the Sim's dispatcher opens the
/// tasks, deterministically); Twilio callbacks signed for [`PUBLIC`].
async fn api() -> Api {
    let sim = Sim::new(&http_policy(), NOW);
    let state = AppState::new(AppParts {
        store: sim.store.clone(),
        policy: sim.policy.clone(),
        clock: Arc::new(sim.clock.clone()),
        wake: Arc::new(plazo::dispatch::Wake::default()),
        api_token: TOKEN.into(),
        payment_secret: None,
        webhook_tolerance: Duration::from_secs(300),
        ready: Arc::new(AtomicBool::new(true)),
        providers: Arc::new(ProviderHooks {
            twilio_auth_token: Some(TWILIO_TOKEN.into()),
            public_base: PUBLIC.into(),
            ..ProviderHooks::default()
        }),
        simulation: None,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(state, &plazo::config::HttpConfig::default());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Api {
        sim,
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
    }
}

impl Api {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        common::inproc::request(
            &self.http,
            &self.base,
            method,
            path,
            Some(&format!("Bearer {TOKEN}")),
            body.as_deref(),
        )
        .await
    }
    async fn get(&self, path: &str) -> Value {
        let (st, v) = self.call("GET", path, None).await;
        assert_eq!(st, 200, "GET {path}: {v}");
        v
    }
    fn client(&self, id: &str, phone: &str, segment: Option<&str>) {
        let mut body = json!({"name": "María Pérez", "email": "maria@cliente.example.co",
            "locale": "es-CO", "timezone": "America/Bogota", "country": "CO", "phone": phone});
        if let Some(s) = segment {
            body["segment"] = json!(s);
        }
        self.sim.client(id, body);
    }
    /// Creates an invoice long overdue, then runs the dispatcher: its one step is caught up
    /// (an email) and the exhausted cadence opens a call task.
    async fn invoice(&self, id: &str, client: &str, due: &str, amount: &str) {
        self.sim.invoice(id, client, due, amount);
        assert_eq!(self.sim.at_ts(self.sim.now()).await, 1);
    }
    /// Open tasks (the default listing) with `query`.
    async fn tasks(&self, query: &str) -> Vec<Value> {
        self.get(&format!("/v1/tasks{query}")).await["tasks"]
            .as_array()
            .unwrap()
            .clone()
    }
    /// The live call task of invoice `inv`.
    async fn task_of(&self, inv: &str) -> Value {
        self.tasks("?state=live&limit=500")
            .await
            .into_iter()
            .find(|t| t["invoice_id"] == inv && t["kind"] == "call")
            .unwrap_or_else(|| panic!("no live call task for {inv}"))
    }
    async fn invoice_view(&self, inv: &str) -> Value {
        self.get(&format!("/v1/invoices/{inv}")).await
    }
    async fn outcome(&self, id: &str, body: Value) -> (u16, Value) {
        self.call("POST", &format!("/v1/tasks/{id}/outcome"), Some(body))
            .await
    }
    async fn claim(&self, id: &str, agent: &str) -> (u16, Value) {
        self.call(
            "POST",
            &format!("/v1/tasks/{id}/claim"),
            Some(json!({ "agent": agent })),
        )
        .await
    }
    /// A signed Twilio inbound SMS.
    async fn sms(&self, sid: &str, from: &str, body: &str) -> u16 {
        let path = "/webhooks/twilio/inbound";
        let params: Vec<(String, String)> = [
            ("MessageSid", sid),
            ("AccountSid", "AC00000000000000000000000000000000"),
            ("From", from),
            ("To", "+15005550006"),
            ("Body", body),
            ("NumMedia", "0"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let sig = plazo::inbound::twilio::expected_signature(
            TWILIO_TOKEN,
            &format!("{PUBLIC}{path}"),
            &params,
        );
        let form = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", sig)
            .body(form)
            .send()
            .await
            .unwrap();
        resp.status().as_u16()
    }
}

fn ids(tasks: &[Value]) -> Vec<String> {
    tasks
        .iter()
        .map(|t| t["invoice_id"].as_str().unwrap_or("-").to_owned())
        .collect()
}

#[tokio::test]
async fn the_queue_is_ordered_by_priority_filtered_paged_and_voiding_cancels() {
    let api = api().await;
    api.client("cli-1", "+573001234567", None);
    api.client("cli-2", "+573001234568", Some("vip"));
    // 1,000,000 × 37 days; 5,000,000 × 5 days; 100,000 × 68 days.
    api.invoice("inv-a", "cli-1", "2026-02-01", "1000000").await;
    api.invoice("inv-b", "cli-1", "2026-03-05", "5000000").await;
    api.invoice("inv-c", "cli-2", "2026-01-01", "100000").await;
    let all = api.tasks("").await;
    assert_eq!(ids(&all), ["inv-a", "inv-b", "inv-c"]);
    assert_eq!(all[0]["priority"], "37000000");
    assert_eq!(all[1]["priority"], "25000000");
    assert_eq!(all[2]["priority"], "6800000");
    assert_eq!(all[0]["state"], "open");
    assert_eq!(all[0]["kind"], "call");
    assert_eq!(all[0]["attempt"], 1);
    assert_eq!(all[0]["due_at"], "2026-03-10T15:00:00Z");
    assert_eq!(all[2]["segment"], "vip");
    let id_a = all[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(api.get(&format!("/v1/tasks/{id_a}")).await["id"], id_a);
    // Re-sending an invoice (a new amount: re-planned) does not open a second call for it.
    api.sim.invoice("inv-a", "cli-1", "2026-02-01", "1000001");
    api.sim.at_ts(api.sim.now()).await;
    assert_eq!(api.tasks("").await.len(), 3);

    assert_eq!(ids(&api.tasks("?segment=vip").await), ["inv-c"]);
    assert_eq!(ids(&api.tasks("?kind=review").await), Vec::<String>::new());
    assert!(
        api.tasks("?due_before=2026-03-10T15:00:00Z")
            .await
            .is_empty()
    );
    assert_eq!(api.tasks("?due_before=2026-03-10T15:00:01Z").await.len(), 3);
    let page = api.get("/v1/tasks?limit=2").await;
    assert_eq!(ids(page["tasks"].as_array().unwrap()), ["inv-a", "inv-b"]);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let next = api.get(&format!("/v1/tasks?limit=2&cursor={cursor}")).await;
    assert_eq!(ids(next["tasks"].as_array().unwrap()), ["inv-c"]);
    assert!(next["next_cursor"].is_null());
    for bad in [
        "?state=pending",
        "?due_before=tomorrow",
        "?limit=0",
        "?kind=visit",
        "?cursor=nope",
    ] {
        let (st, v) = api.call("GET", &format!("/v1/tasks{bad}"), None).await;
        assert_eq!(st, 422, "{bad}: {v}");
    }

    // Voiding an invoice cancels its call; the timeline says why.
    let id_b = all[1]["id"].as_str().unwrap().to_owned();
    let (st, v) = api
        .call(
            "POST",
            "/v1/invoices/inv-b/void",
            Some(json!({"reason": "issued twice"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let b = api.get(&format!("/v1/tasks/{id_b}")).await;
    assert_eq!(b["state"], "cancelled");
    assert_eq!(b["note"], "the invoice was voided");
    assert_eq!(ids(&api.tasks("").await), ["inv-a", "inv-c"]);
    assert_eq!(ids(&api.tasks("?state=cancelled").await), ["inv-b"]);
    let timeline = api.invoice_view("inv-b").await["timeline"].to_string();
    assert!(
        timeline.contains(&format!(
            "call task {id_b} cancelled: the invoice was voided"
        )),
        "{timeline}"
    );
}

#[tokio::test]
async fn claims_conflict_expire_and_unknown_tasks_are_404() {
    let api = api().await;
    api.client("cli-1", "+573001234567", None);
    api.invoice("inv-a", "cli-1", "2026-02-01", "1000000").await;
    let id = api.task_of("inv-a").await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (st, v) = api.claim(&id, "ana").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["task"]["state"], "claimed");
    assert_eq!(v["task"]["agent"], "ana");
    assert_eq!(v["task"]["claim_expires_at"], "2026-03-10T15:30:00Z");
    let (st, v) = api.claim(&id, "bob").await;
    assert_eq!(st, 409, "{v}");
    assert!(
        v.to_string()
            .contains("claimed by ana until 2026-03-10T15:30:00Z"),
        "{v}"
    );
    assert!(api.tasks("").await.is_empty(), "a claimed task is not open");
    assert_eq!(api.tasks("?state=claimed&agent=ana").await.len(), 1);
    assert!(api.tasks("?state=claimed&agent=bob").await.is_empty());
    // Bob cannot close Ana's claim either.
    let (st, v) = api
        .outcome(&id, json!({"result": "reached", "agent": "bob"}))
        .await;
    assert_eq!(st, 409, "{v}");
    // The same agent may claim again (renewed).
    api.sim.clock.set("2026-03-10T15:20:00Z".parse().unwrap());
    let (st, v) = api.claim(&id, "ana").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["task"]["claim_expires_at"], "2026-03-10T15:50:00Z");

    // Thirty minutes without an outcome: back in the queue, and Bob may take it.
    api.sim.clock.set("2026-03-10T15:50:00Z".parse().unwrap());
    let t = api.get(&format!("/v1/tasks/{id}")).await;
    assert_eq!(t["state"], "open");
    assert!(t["agent"].is_null());
    assert_eq!(api.tasks("").await.len(), 1);
    let (st, v) = api.claim(&id, "bob").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["task"]["agent"], "bob");

    // Unknown (and malformed) task ids: 404 everywhere.
    for unknown in ["tsk_00000000000000000000000000000000", "nope"] {
        let (st, _) = api.call("GET", &format!("/v1/tasks/{unknown}"), None).await;
        assert_eq!(st, 404);
        let (st, _) = api.claim(unknown, "ana").await;
        assert_eq!(st, 404);
        let (st, _) = api.outcome(unknown, json!({"result": "reached"})).await;
        assert_eq!(st, 404);
    }
    // A bad agent name is refused.
    let (st, _) = api.claim(&id, " ").await;
    assert_eq!(st, 422);
}

#[tokio::test]
async fn each_outcome_acts_on_the_invoice_and_bad_input_changes_nothing() {
    let api = api().await;
    api.client("cli-1", "+573001234567", None);
    api.client("cli-2", "+573001234568", None);
    for (inv, client) in [
        ("inv-promise", "cli-1"),
        ("inv-dispute", "cli-1"),
        ("inv-paid", "cli-1"),
        ("inv-noanswer", "cli-1"),
        ("inv-reached", "cli-1"),
        ("inv-wrong", "cli-2"),
    ] {
        api.invoice(inv, client, "2026-02-01", "1000000").await;
    }

    // Invalid result: 422 naming the allowed values; nothing changed.
    let t = api.task_of("inv-promise").await;
    let id = t["id"].as_str().unwrap().to_owned();
    let (st, _) = api.claim(&id, "ana").await;
    assert_eq!(st, 200);
    let before_task = api.get(&format!("/v1/tasks/{id}")).await;
    let before_inv = api.invoice_view("inv-promise").await;
    for (body, field) in [
        (json!({"result": "maybe"}), "result"),
        (json!({"result": "promise"}), "promise"),
        (
            json!({"result": "promise", "promise": {"amount": "9000000", "date": "2026-03-20"}}),
            "promise.amount",
        ),
        (
            json!({"result": "reached", "promise": {"amount": "1", "date": "2026-03-20"}}),
            "promise",
        ),
        (json!({"result": "reached", "note": "a\u{0}b"}), "note"),
    ] {
        let (st, v) = api.outcome(&id, body.clone()).await;
        assert_eq!(st, 422, "{body}: {v}");
        assert!(v.to_string().contains(&format!("{field}:")), "{body}: {v}");
    }
    let (_, v) = api.outcome(&id, json!({"result": "maybe"})).await;
    let msg = v.to_string();
    for r in [
        "reached",
        "no_answer",
        "wrong_number",
        "promise",
        "dispute",
        "claims_paid",
    ] {
        assert!(msg.contains(&format!("\\\"{r}\\\"")), "{msg}");
    }
    assert_eq!(api.get(&format!("/v1/tasks/{id}")).await, before_task);
    assert_eq!(api.invoice_view("inv-promise").await, before_inv);

    // promise: made in the same command.
    let (st, v) = api
        .outcome(
            &id,
            json!({"result": "promise", "note": "paga el viernes",
                   "promise": {"amount": "1000000", "date": "2026-03-13"}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["task"]["state"], "done");
    assert_eq!(v["task"]["result"], "promise");
    assert_eq!(v["task"]["agent"], "ana");
    assert!(!v["promise"].is_null(), "{v}");
    let inv = api.invoice_view("inv-promise").await;
    assert_eq!(inv["invoice"]["arrangements"].as_array().unwrap().len(), 1);
    let timeline = inv["timeline"].to_string();
    assert!(
        timeline.contains(&format!("call task {id} by ana: promise")),
        "{timeline}"
    );
    assert!(timeline.contains("paga el viernes"), "{timeline}");
    // Outcome on a done task: 409, and nothing changes.
    let (st, v) = api.outcome(&id, json!({"result": "reached"})).await;
    assert_eq!(st, 409, "{v}");
    let (st, _) = api.claim(&id, "ana").await;
    assert_eq!(st, 409);

    // Without a claim or an agent: who made the call?
    let dispute = api.task_of("inv-dispute").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (st, v) = api.outcome(&dispute, json!({"result": "dispute"})).await;
    assert_eq!(st, 422, "{v}");
    assert!(v.to_string().contains("agent:"), "{v}");
    // dispute: paused with that reason and the note.
    let (st, v) = api
        .outcome(
            &dispute,
            json!({"result": "dispute", "agent": "bob", "note": "dice que la mercancía llegó dañada"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let inv = api.invoice_view("inv-dispute").await;
    assert_eq!(
        inv["invoice"]["pause"]["reason"],
        "dispute: dice que la mercancía llegó dañada"
    );

    // claims_paid: paused as debtor_says_paid.
    let paid = api.task_of("inv-paid").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (st, v) = api
        .outcome(&paid, json!({"result": "claims_paid", "agent": "bob"}))
        .await;
    assert_eq!(st, 200, "{v}");
    let inv = api.invoice_view("inv-paid").await;
    assert_eq!(inv["invoice"]["pause"]["reason"], "debtor_says_paid");

    // reached: just recorded.
    let reached = api.task_of("inv-reached").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (st, v) = api
        .outcome(
            &reached,
            json!({"result": "reached", "agent": "bob", "note": "llamará mañana"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let inv = api.invoice_view("inv-reached").await;
    assert!(inv["invoice"]["pause"].is_null());
    assert!(
        inv["timeline"]
            .to_string()
            .contains(&format!("call task {reached} by bob: reached")),
    );

    // no_answer at 17:00 local: the next attempt 4 hours later would be 21:00, outside the
    // window, so it is due at 08:00 the next morning; until attempts run out.
    api.sim.clock.set("2026-03-10T22:00:00Z".parse().unwrap());
    let first = api.task_of("inv-noanswer").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (st, v) = api
        .outcome(&first, json!({"result": "no_answer", "agent": "ana"}))
        .await;
    assert_eq!(st, 200, "{v}");
    let next = v["next_task"].clone();
    assert_eq!(next["attempt"], 2, "{v}");
    assert_eq!(next["due_at"], "2026-03-11T13:00:00Z");
    assert_eq!(next["state"], "open");
    let second = next["id"].as_str().unwrap().to_owned();
    assert_eq!(api.task_of("inv-noanswer").await["id"], second);
    let (st, v) = api
        .outcome(&second, json!({"result": "no_answer", "agent": "ana"}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert!(v["next_task"].is_null(), "{v}");
    let timeline = api.invoice_view("inv-noanswer").await["timeline"].to_string();
    assert!(
        timeline.contains("no answer on attempt 2 of 2: the call attempts are used up"),
        "{timeline}"
    );

    // wrong_number: the phone is unreachable for calls, SMS and WhatsApp.
    let wrong = api.task_of("inv-wrong").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (st, v) = api
        .outcome(&wrong, json!({"result": "wrong_number", "agent": "ana"}))
        .await;
    assert_eq!(st, 200, "{v}");
    let contact = api.get("/v1/contacts/%2B573001234568").await;
    let unreachable = contact["unreachable"].as_object().unwrap();
    for kind in ["call", "sms", "whatsapp"] {
        assert!(unreachable.contains_key(kind), "{contact}");
    }
    // The client's own timeline has each outcome.
    let client = api.get("/v1/clients/cli-2/timeline").await.to_string();
    assert!(client.contains("wrong_number"), "{client}");
}

#[tokio::test]
async fn a_signed_ya_pague_pauses_the_clients_invoices_and_opens_one_review_task() {
    let api = api().await;
    api.client("cli-1", "+573001234567", None);
    api.invoice("inv-a", "cli-1", "2026-02-01", "1000000").await;
    api.invoice("inv-b", "cli-1", "2026-03-05", "500000").await;
    // Not "ya pagué": nothing but the timeline.
    assert_eq!(api.sms("SM1", "+573001234567", "¿Cuánto debo?").await, 200);
    assert!(api.tasks("?kind=review").await.is_empty());
    assert!(api.invoice_view("inv-a").await["invoice"]["pause"].is_null());

    let text = "Hola,\nYA PAGUÉ ayer por PSE!!";
    assert_eq!(api.sms("SM2", "+573001234567", text).await, 200);
    for inv in ["inv-a", "inv-b"] {
        let v = api.invoice_view(inv).await;
        assert_eq!(v["invoice"]["pause"]["reason"], "debtor_says_paid", "{v}");
        let timeline = v["timeline"].to_string();
        assert!(
            timeline.contains("debtor says they paid (sms from +573001234567): \\\"Hola, YA PAGUÉ ayer por PSE!!\\\""),
            "{timeline}"
        );
    }
    let reviews = api.tasks("?kind=review").await;
    assert_eq!(reviews.len(), 1, "{reviews:?}");
    assert_eq!(reviews[0]["client_id"], "cli-1");
    assert!(
        reviews[0]["invoice_id"].is_null(),
        "two invoices: client-level"
    );
    assert_eq!(reviews[0]["priority"], "37000000");
    let lines = |v: &Value| v["timeline"].as_array().unwrap().len();
    let before = lines(&api.invoice_view("inv-a").await);

    // Delivered twice: nothing more.
    assert_eq!(api.sms("SM2", "+573001234567", text).await, 200);
    assert_eq!(lines(&api.invoice_view("inv-a").await), before);
    assert_eq!(api.tasks("?kind=review").await.len(), 1);
    // Said again in another message: still one review task, the timeline names it.
    assert_eq!(api.sms("SM3", "+573001234567", "ya pague").await, 200);
    assert_eq!(api.tasks("?kind=review").await.len(), 1);
    let timeline = api.invoice_view("inv-a").await["timeline"].to_string();
    assert!(
        timeline.contains(&format!(
            "review task {} is still open",
            reviews[0]["id"].as_str().unwrap()
        )),
        "{timeline}"
    );
    // Reviewed: the agent records the client-level outcome.
    let review_id = reviews[0]["id"].as_str().unwrap();
    let (st, v) = api
        .outcome(
            review_id,
            json!({"result": "reached", "agent": "ana", "note": "pago confirmado en banco"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert!(api.tasks("?kind=review").await.is_empty());
}
