//! `GET /metrics` of the daemon run in-process under a manual clock: after real actions
//! (clients and invoices created, a reminder dispatched, forged and valid payment webhooks),
//! the page holds exactly the counts those actions produce, and it is valid Prometheus text.
//! Each daemon has its own recorder, so the daemons of this binary never see each other's
//! counts.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::inproc::{InProcess, start_in_process};
use common::write_private;
use common::{step, test_policy};

use jiff::{SignedDuration, Timestamp};
use plazo::clock::{Clock, ManualClock};
use plazo::daemon::Running;
use plazo::inbound::standard_webhooks::{WebhookSecret, sign};
use serde_json::{Value, json};

const TOKEN: &str = "metrics-test-token-7c1e";
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOW: &str = "2026-03-01T12:00:00Z";

/// One sample: metric name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed exposition page.
#[derive(Debug)]
struct Page {
    text: String,
    samples: Vec<Sample>,
}

impl Page {
    /// Parses Prometheus text, checking its shape on the way: one `# HELP` and one `# TYPE`
    /// per family, before its samples, and every sample in a declared family.
    fn parse(text: &str) -> Page {
        let mut helps = BTreeSet::new();
        let mut types: BTreeMap<String, String> = BTreeMap::new();
        let mut samples = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap().to_owned();
                assert!(
                    helps.insert(name.clone()),
                    "two HELP lines for {name}:\n{text}"
                );
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut it = rest.split(' ');
                let name = it.next().unwrap().to_owned();
                let kind = it.next().unwrap().to_owned();
                assert!(
                    ["counter", "gauge", "histogram", "summary"].contains(&kind.as_str()),
                    "{line}"
                );
                assert!(
                    types.insert(name.clone(), kind).is_none(),
                    "two TYPE lines for {name}:\n{text}"
                );
                continue;
            }
            assert!(!line.starts_with('#'), "unexpected comment {line:?}");
            let s = parse_sample(line);
            let family = types.keys().find(|f| {
                s.name == **f
                    || (types[*f] == "histogram"
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|sfx| s.name == format!("{f}{sfx}")))
            });
            assert!(family.is_some(), "sample {line:?} before its # TYPE");
            samples.push(s);
        }
        for name in types.keys() {
            assert!(helps.contains(name), "no HELP for {name}");
        }
        Page {
            text: text.to_owned(),
            samples,
        }
    }

    /// The value of the one sample `name` whose labels include every pair of `labels`; `None`
    /// when there is none. Panics when several match.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect();
        assert!(
            found.len() <= 1,
            "several samples of {name} match {labels:?}: {found:?}"
        );
        found.first().map(|s| s.value)
    }

    /// Like [`Page::get`], but the sample must be there.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no sample {name} {labels:?} in:\n{}", self.text))
    }
}

/// `name{k="v",...} value`.
fn parse_sample(line: &str) -> Sample {
    let (head, value) = line.rsplit_once(' ').unwrap();
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        v => v
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}")),
    };
    let (name, labels) = match head.split_once('{') {
        None => (head.to_owned(), BTreeMap::new()),
        Some((name, rest)) => {
            let body = rest.strip_suffix('}').unwrap();
            let mut labels = BTreeMap::new();
            let mut chars = body.chars().peekable();
            while chars.peek().is_some() {
                let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                assert_eq!(chars.next(), Some('"'), "{line:?}");
                let mut val = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => match chars.next().unwrap() {
                            'n' => val.push('\n'),
                            other => val.push(other),
                        },
                        '"' => break,
                        c => val.push(c),
                    }
                }
                labels.insert(key, val);
                if chars.peek() == Some(&',') {
                    chars.next();
                }
            }
            (name.to_owned(), labels)
        }
    };
    Sample {
        name,
        labels,
        value,
    }
}

struct Api {
    running: Option<Running>,
    base: String,
    clock: ManualClock,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start() -> Api {
    start_with("").await
}

/// A daemon with `extra` tables in its config.
async fn start_with(extra: &str) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_private(&d.join("whsec"), WEBHOOK_SECRET);
    let tables = format!(
        "[payment_webhooks]\nsecret = {{ file = \"{}\" }}\n\n{extra}",
        d.join("whsec").display()
    );
    let policy = test_policy(
        "America/Bogota",
        "es",
        ("08:00", "19:00"),
        &["standard"],
        &[step("standard", "due_today", "0d", None, &["email"])],
    );
    let (running, clock) = start_in_process(
        d,
        InProcess {
            policy: &policy,
            token: TOKEN,
            top: "",
            tables: &tables,
            now: NOW,
            channels: "",
        },
    )
    .await;
    Api {
        base: format!("http://{}", running.addr),
        running: Some(running),
        clock,
        http: reqwest::Client::new(),
        _dir: dir,
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

    async fn client(&self, id: &str) {
        let (st, v) = self
            .call(
                "PUT",
                &format!("/v1/clients/{id}"),
                Some(
                    json!({"name": "María Pérez", "email": "maria@cliente.example.co",
                            "locale": "es-CO", "timezone": "America/Bogota", "country": "CO"}),
                ),
            )
            .await;
        assert_eq!(st, 201, "{v}");
    }

    async fn invoice(&self, id: &str, due: &str) {
        let (st, v) = self
            .call(
                "PUT",
                &format!("/v1/invoices/{id}"),
                Some(json!({"client_id": "cli-1", "number": format!("FV-{id}"),
                            "currency": "COP", "amount": "1250000", "due_at": due,
                            "payment_url": "https://pagos.example.co/x"})),
            )
            .await;
        assert_eq!(st, 201, "{v}");
    }

    async fn scrape(&self) -> Page {
        let resp = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        Page::parse(&resp.text().await.unwrap())
    }

    /// A Standard Webhooks delivery signed at `ts` (Unix seconds); `tamper` alters the body
    /// after signing.
    async fn webhook(&self, id: &str, ts: i64, body: &str, tamper: bool) -> u16 {
        let secret = WebhookSecret::parse(WEBHOOK_SECRET).unwrap();
        let sig = sign(&secret, id, ts, body.as_bytes());
        let sent = if tamper {
            body.replace("250000", "950000")
        } else {
            body.to_owned()
        };
        self.http
            .post(format!("{}/webhooks/payments", self.base))
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .header("content-type", "application/json")
            .body(sent)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn stop(mut self) {
        self.running.take().unwrap().shutdown().await.unwrap();
    }
}

fn payment(reference: &str) -> String {
    json!({"type": "payment.succeeded", "timestamp": NOW,
           "data": {"invoice_id": "inv-1", "amount": "250000", "currency": "COP",
                    "reference": reference}})
    .to_string()
}

const REMINDERS: &str = "plazo_reminders_total";
const SENT_DUE_TODAY: &[(&str, &str)] = &[
    ("outcome", "sent"),
    ("channel", "email"),
    ("step", "due_today"),
    ("segment", "standard"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_the_daemon_did() {
    let api = start().await;
    api.client("cli-1").await;
    api.invoice("inv-1", "2026-03-20").await;
    api.invoice("inv-2", "2026-03-25").await;

    let page = api.scrape().await;
    // Both reminders are scheduled, none due yet, nothing sent.
    assert_eq!(page.value("plazo_reminders_pending", &[]), 2.0);
    assert_eq!(page.value("plazo_reminders_due", &[]), 0.0);
    assert_eq!(page.get(REMINDERS, &[]), None, "{}", page.text);
    // Requests are counted under their route template, never the raw path.
    let put_invoice = [
        ("route", "/v1/invoices/{id}"),
        ("method", "PUT"),
        ("status", "201"),
    ];
    assert_eq!(page.value("plazo_http_requests_total", &put_invoice), 2.0);
    assert_eq!(
        page.value(
            "plazo_http_requests_total",
            &[("route", "/v1/clients/{id}"), ("status", "201")]
        ),
        1.0
    );
    assert_eq!(
        page.value(
            "plazo_http_request_duration_seconds_count",
            &[("route", "/v1/invoices/{id}"), ("method", "PUT")]
        ),
        2.0
    );
    assert!(
        !page.text.contains("inv-1"),
        "a raw path leaked:\n{}",
        page.text
    );
    assert!(page.value("plazo_store_size_bytes", &[]) > 0.0);
    assert_eq!(page.value("plazo_store_writable", &[]), 1.0);
    assert_eq!(page.value("plazo_payment_inbox_depth", &[]), 0.0);
    assert_eq!(page.value("plazo_events_out_pending", &[]), 0.0);

    // The clock passes inv-1's reminder by 90 s: it is due and not yet claimed.
    let (_, inv) = api.call("GET", "/v1/invoices/inv-1", None).await;
    let fire_at: Timestamp = inv["next_reminder"]["fire_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    api.clock.set(fire_at + SignedDuration::from_secs(90));
    let page = api.scrape().await;
    assert_eq!(page.value("plazo_reminders_due", &[]), 1.0);
    assert_eq!(page.value("plazo_reminders_pending", &[]), 2.0);

    // The dispatcher sends it.
    api.running.as_ref().unwrap().wake_dispatcher();
    let end = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let page = api.scrape().await;
        if page.get(REMINDERS, SENT_DUE_TODAY).is_some() {
            break;
        }
        assert!(std::time::Instant::now() < end, "not sent:\n{}", page.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The page that first shows the send may hold store gauges read before it was recorded
    // (a scrape reads them before the counters); the next page cannot.
    let page = api.scrape().await;
    assert_eq!(page.value(REMINDERS, SENT_DUE_TODAY), 1.0);
    // One outcome line in all: the send.
    let lines: f64 = page
        .samples
        .iter()
        .filter(|s| s.name == REMINDERS)
        .map(|s| s.value)
        .sum();
    assert_eq!(lines, 1.0, "{}", page.text);
    // It was claimed once, by this node.
    assert_eq!(
        page.value("plazo_reminders_claimed_total", &[]),
        1.0,
        "{}",
        page.text
    );
    // On PostgreSQL the message went through the shared send queue: this node, the only one,
    // claimed it there too; on sled there is no queue.
    let queued = if common::on_postgres() { 1.0 } else { 0.0 };
    assert_eq!(
        page.get("plazo_sends_claimed_total", &[]).unwrap_or(0.0),
        queued,
        "{}",
        page.text
    );
    // Sent 90 s after its planned time (the manual clock does not move by itself).
    let lateness = "plazo_dispatch_lateness_seconds";
    assert_eq!(page.value(&format!("{lateness}_count"), &[]), 1.0);
    assert_eq!(page.value(&format!("{lateness}_sum"), &[]), 90.0);
    assert_eq!(
        page.value(&format!("{lateness}_bucket"), &[("le", "60")]),
        0.0
    );
    assert_eq!(
        page.value(&format!("{lateness}_bucket"), &[("le", "300")]),
        1.0
    );
    assert_eq!(page.value("plazo_reminders_due", &[]), 0.0);
    assert_eq!(page.value("plazo_reminders_pending", &[]), 1.0);

    // Forged, stale and unsigned payment webhooks are refused and counted by reason.
    let now = api.clock.now().as_second();
    assert_eq!(
        api.webhook("msg_forged", now, &payment("R-1"), true).await,
        401
    );
    assert_eq!(
        api.webhook("msg_old", now - 3600, &payment("R-1"), false)
            .await,
        401
    );
    let unsigned = api
        .http
        .post(format!("{}/webhooks/payments", api.base))
        .body(payment("R-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    // A valid one is applied, its redelivery a duplicate.
    assert_eq!(
        api.webhook("msg_ok", now, &payment("R-1"), false).await,
        200
    );
    assert_eq!(
        api.webhook("msg_ok", now, &payment("R-1"), false).await,
        200
    );
    // An unknown endpoint.
    let (st, _) = api.call("GET", "/no/such/endpoint", None).await;
    assert_eq!(st, 404);

    let page = api.scrape().await;
    let rejected = |reason| {
        page.value(
            "plazo_webhook_rejections_total",
            &[("endpoint", "payments"), ("reason", reason)],
        )
    };
    assert_eq!(rejected("bad_signature"), 1.0);
    assert_eq!(rejected("stale_timestamp"), 1.0);
    assert_eq!(rejected("missing_signature"), 1.0);
    let events = |state| {
        page.value(
            "plazo_payment_events_total",
            &[("provider", "standard_webhooks"), ("state", state)],
        )
    };
    assert_eq!(events("applied"), 1.0);
    assert_eq!(events("duplicate"), 1.0);
    let hook = |status| {
        page.value(
            "plazo_http_requests_total",
            &[
                ("route", "/webhooks/payments"),
                ("method", "POST"),
                ("status", status),
            ],
        )
    };
    assert_eq!(hook("401"), 3.0);
    assert_eq!(hook("200"), 2.0);
    assert_eq!(
        page.value(
            "plazo_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert!(!page.text.contains("/no/such"), "{}", page.text);
    // The scrapes themselves are requests too.
    assert!(
        page.value(
            "plazo_http_requests_total",
            &[("route", "/metrics"), ("status", "200")]
        ) >= 4.0
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_in_one_process_count_apart() {
    let (a, b) = tokio::join!(start(), start());
    a.client("cli-1").await;
    a.invoice("inv-1", "2026-03-20").await;
    let (pa, pb) = tokio::join!(a.scrape(), b.scrape());
    let put = [("route", "/v1/invoices/{id}"), ("status", "201")];
    assert_eq!(pa.value("plazo_http_requests_total", &put), 1.0);
    assert_eq!(
        pb.get("plazo_http_requests_total", &put),
        None,
        "{}",
        pb.text
    );
    assert_eq!(pa.value("plazo_reminders_pending", &[]), 1.0);
    assert_eq!(pb.value("plazo_reminders_pending", &[]), 0.0);
    tokio::join!(a.stop(), b.stop());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_an_address_of_their_own() {
    let api = start_with("[metrics]\nlisten = \"127.0.0.1:0\"\n").await;
    let running = api.running.as_ref().unwrap();
    let apart = running.metrics_addr.expect("metrics address bound");
    assert_ne!(apart, running.addr);
    api.client("cli-1").await;
    // The API's port no longer serves /metrics.
    let (st, v) = api.call("GET", "/metrics", None).await;
    assert_eq!(st, 404, "{v}");
    assert_eq!(v["error"]["code"], "no_route", "{v}");
    // The metrics address serves it, without a token, and nothing else.
    let resp = api
        .http
        .get(format!("http://{apart}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let page = Page::parse(&resp.text().await.unwrap());
    assert_eq!(
        page.value(
            "plazo_http_requests_total",
            &[("route", "/v1/clients/{id}"), ("status", "201")]
        ),
        1.0
    );
    assert_eq!(
        page.value(
            "plazo_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0,
        "the refused /metrics on the API port is an unmatched request"
    );
    let other = api
        .http
        .get(format!("http://{apart}/v1/clients/cli-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 404);
    api.stop().await;
}

const STRIPE_SECRET: &str = "whsec_metrics_stripe_secret";

/// A Stripe `invoice.paid` for inv-1's whole amount.
fn stripe_paid(id: &str) -> String {
    json!({"id": id, "object": "event", "api_version": "2026-06-24.dahlia", "created": 1_700_000_000,
           "livemode": false, "pending_webhooks": 1, "type": "invoice.paid",
           "data": {"object": {"id": "in_1Q", "object": "invoice", "number": "STRIPE-0001",
                               "currency": "cop", "amount_paid": 125_000_000, "amount_remaining": 0,
                               "status": "paid", "metadata": {"plazo_invoice_id": "inv-1"},
                               "status_transitions": {"paid_at": 1_700_000_000}}}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_webhooks_count_rejections_and_inbox_states() {
    let dir = tempfile::tempdir().unwrap();
    write_private(&dir.path().join("stripe"), STRIPE_SECRET);
    let api = start_with(&format!(
        "[stripe]\nwebhook_secret = {{ file = \"{}\" }}\n",
        dir.path().join("stripe").display()
    ))
    .await;
    api.client("cli-1").await;
    api.invoice("inv-1", "2026-03-20").await;
    let post = |body: String, secret: &'static str| {
        let t = api.clock.now().as_second();
        let sig = plazo::payments::stripe::sign_header(secret, t, body.as_bytes());
        api.http
            .post(format!("{}/webhooks/stripe", api.base))
            .header("stripe-signature", sig)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let forged = post(stripe_paid("evt_forged"), "whsec_not_the_secret")
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    let ok = post(stripe_paid("evt_paid"), STRIPE_SECRET).await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    // The inbox applies it in the background.
    let end = std::time::Instant::now() + Duration::from_secs(15);
    let applied = [("provider", "stripe"), ("state", "applied")];
    loop {
        let page = api.scrape().await;
        if page.get("plazo_payment_events_total", &applied).is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "not applied:\n{}",
            page.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A scrape reads the store's gauges before the counters: the page that first shows the
    // "applied" count may hold gauges read before the payment was applied. The next one
    // cannot (the count rises only once the payment is applied).
    let page = api.scrape().await;
    assert_eq!(page.value("plazo_payment_events_total", &applied), 1.0);
    assert_eq!(
        page.value(
            "plazo_payment_events_total",
            &[("provider", "stripe"), ("state", "received")]
        ),
        1.0
    );
    assert_eq!(
        page.value(
            "plazo_webhook_rejections_total",
            &[("endpoint", "stripe"), ("reason", "bad_signature")]
        ),
        1.0
    );
    assert_eq!(page.value("plazo_payment_inbox_depth", &[]), 0.0);
    // Paid in full: its reminder is gone.
    assert_eq!(page.value("plazo_reminders_pending", &[]), 0.0);
    api.stop().await;
}
