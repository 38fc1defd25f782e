//! The daemon in-process (`plazo::daemon::start`) under a manual clock, and a bare store with a
//! policy: the set-ups the API, HTTP-hardening and fuzz tests share.

use std::path::Path;
use std::sync::Arc;

use plazo::clock::ManualClock;
use plazo::config::load_daemon_config;
use plazo::daemon::Running;
use plazo::policy::parse_policy;
use plazo::service::PolicyHandle;
use plazo::store::Store;

use super::write_private;

/// What varies between in-process daemons.
pub struct InProcess<'a> {
    /// The policy's TOML text.
    pub policy: &'a str,
    /// The API token (written to a private file).
    pub token: &'a str,
    /// Top-level keys added to `plazo.toml` (e.g. `public_url = "..."`).
    pub top: &'a str,
    /// Whole tables added to `plazo.toml` (e.g. `[http]` or `[payment_webhooks]`).
    pub tables: &'a str,
    /// The manual clock's start, RFC 3339.
    pub now: &'a str,
    /// `[routes]` and `[channels.*]` tables; empty: every channel to the outbox.
    pub channels: &'a str,
}

/// Writes `dir/policy.toml`, a private token file and `dir/plazo.toml` (API on 127.0.0.1:0,
/// data in `dir/data`, every channel to the outbox), then starts the daemon.
pub async fn start_in_process(dir: &Path, o: InProcess<'_>) -> (Running, ManualClock) {
    std::fs::write(dir.join("policy.toml"), o.policy).unwrap();
    write_private(&dir.join("token"), &format!("{}\n", o.token));
    let cfg = format!(
        r#"
listen = "127.0.0.1:0"
data_dir = "{data}"
policy = "policy.toml"
{top}

[api]
token = {{ file = "{token}" }}

{tables}

{channels}
{store}
"#,
        data = dir.join("data").display(),
        token = dir.join("token").display(),
        top = o.top,
        store = super::store_table(dir),
        tables = o.tables,
        channels = if o.channels.is_empty() {
            "[routes]\nemail = \"outbox\"\n\n[channels.outbox]\ntype = \"outbox\"\ndir = \"outbox\"\n"
        } else {
            o.channels
        },
    );
    std::fs::write(dir.join("plazo.toml"), cfg).unwrap();
    let config = load_daemon_config(&dir.join("plazo.toml")).unwrap();
    let clock = ManualClock::new(o.now.parse().unwrap());
    let running = plazo::daemon::start(config, Arc::new(clock.clone()))
        .await
        .unwrap();
    assert_eq!(running.store().backend_name(), super::test_backend());
    (running, clock)
}

/// A fresh store in `dir/db` and `policy` (TOML text) parsed from `dir/policy.toml`.
pub fn store_with_policy(dir: &Path, policy: &str) -> (Store, PolicyHandle) {
    let path = dir.join("policy.toml");
    std::fs::write(&path, policy).unwrap();
    let policy = PolicyHandle::new(parse_policy(policy, &path).unwrap());
    let store = super::open_test_store(dir);
    assert_eq!(store.backend_name(), super::test_backend());
    (store, policy)
}

/// The one-step policy (`due_today` by email, shipped templates) of the hardening tests.
pub fn one_step_policy() -> String {
    super::test_policy(
        "America/Bogota",
        "es",
        ("08:00", "19:00"),
        &["standard"],
        &[super::step("standard", "due_today", "0d", None, &["email"])],
    )
}

/// `PUT /v1/invoices/{id}` at the service level: `body` is the API's JSON body. Returns when
/// the next reminder is due.
pub fn put_invoice(
    store: &Store,
    policy: &PolicyHandle,
    id: &str,
    body: serde_json::Value,
    now: jiff::Timestamp,
) -> Result<Option<jiff::Timestamp>, plazo::service::ServiceError> {
    let input: plazo::service::InvoiceInput = serde_json::from_value(body).unwrap();
    let p = policy.current();
    plazo::service::upsert_invoice(
        store,
        &p.policy,
        &plazo::domain::InvoiceId::new(id).unwrap(),
        input,
        now,
    )
    .map(|(_, _, next)| next)
}

/// One HTTP request to `base` with an optional `Authorization` value and JSON body; returns
/// the status and the body (JSON, or the raw text as a JSON string).
pub async fn request(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http.request(m, format!("{base}{path}"));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_owned());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, value)
}
