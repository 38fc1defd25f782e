//! A local stand-in for the providers' APIs, for the benches: Twilio's Messages API, the
//! WhatsApp Cloud API and a webhook receiver, served by axum on `127.0.0.1:0` from its own
//! thread and its own tokio runtime (separate from whatever sends).
//!
//! Every request is parsed and checked the way the provider would (credentials, required
//! fields), answered the way the provider answers (Twilio: `201` with a JSON Message resource
//! and a fresh `SM…` sid; WhatsApp: `200` with `messages[0].id` = a fresh `wamid.…`; webhook:
//! `200 ok`), and recorded as an [`Arrival`]: the wall-clock receipt time and the benchmark
//! index of the message (`F-{i}` in an SMS body, `inv-{i}` in a WhatsApp URL button or a
//! webhook's `data.invoice_id`). A request that fails a check gets the provider's 4xx and is
//! counted in [`MockState::rejected`].
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use jiff::Timestamp;

pub const TWILIO_ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
pub const TWILIO_TOKEN: &str = "bench-twilio-auth-token-0123456789";
pub const TWILIO_FROM: &str = "+15005550006";
pub const WA_PHONE_ID: &str = "106540352242922";
pub const WA_TOKEN: &str = "EAAbenchWhatsAppAccessToken0123456789";
/// Sender of the SMTP channel.
pub const SMTP_FROM: &str = "Cartera Tornillo <cartera@tornillo.example.co>";
/// `max_connections` of the SMTP channel unless `DISPATCH_SMTP_CONNECTIONS` says otherwise:
/// as many as the dispatcher's `concurrency`, so no send waits for a connection.
pub const SMTP_CONNECTIONS: u32 = 64;
/// `public_url` given to the channels, so Twilio requests carry a `StatusCallback`.
pub const PUBLIC_URL: &str = "https://cobros.example.co";

/// One request received.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// Receipt time, microseconds since the epoch.
    pub at_us: i64,
    /// Benchmark index of the message, when it could be read from the request.
    pub key: Option<usize>,
}

/// What the mock has seen, per provider.
#[derive(Default)]
pub struct MockState {
    pub twilio: Mutex<Vec<Arrival>>,
    pub whatsapp: Mutex<Vec<Arrival>>,
    pub webhook: Mutex<Vec<Arrival>>,
    /// Messages accepted by the SMTP sink (`smtp_sink.rs`).
    pub smtp: Mutex<Vec<Arrival>>,
    /// The distinct `Message-ID`s the SMTP sink accepted.
    pub smtp_message_ids: Mutex<std::collections::HashSet<String>>,
    /// Requests refused because a check failed (should stay 0).
    pub rejected: AtomicU64,
    /// The reason of the last refusal.
    pub last_rejection: Mutex<String>,
    seq: AtomicU64,
}

impl MockState {
    /// The arrivals of `provider` (`twilio`, `whatsapp`, `webhook`, `smtp`).
    pub fn arrivals(&self, provider: &str) -> &Mutex<Vec<Arrival>> {
        match provider {
            "twilio" => &self.twilio,
            "whatsapp" => &self.whatsapp,
            "smtp" => &self.smtp,
            _ => &self.webhook,
        }
    }
    /// How many arrivals `provider` has so far.
    pub fn count(&self, provider: &str) -> usize {
        self.arrivals(provider).lock().unwrap().len()
    }
    fn reject(&self, status: StatusCode, why: String, body: String) -> Response {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        *self.last_rejection.lock().unwrap() = why;
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

/// The index `i` after the first `prefix` in `s` (`F-123` → 123).
fn index_after(s: &str, prefix: &str) -> Option<usize> {
    let rest = &s[s.find(prefix)? + prefix.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn now_us() -> i64 {
    Timestamp::now().as_microsecond()
}

async fn twilio(
    State(st): State<Arc<MockState>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at_us = now_us();
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{TWILIO_ACCOUNT}:{TWILIO_TOKEN}"))
    );
    let err = |code: u32, msg: &str| {
        serde_json::json!({"code": code, "message": msg, "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": 400})
            .to_string()
    };
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(expected_auth.as_str())
        || account != TWILIO_ACCOUNT
    {
        return st.reject(
            StatusCode::UNAUTHORIZED,
            "twilio: bad credentials".into(),
            err(20003, "Authenticate"),
        );
    }
    if !headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
    {
        return st.reject(
            StatusCode::BAD_REQUEST,
            "twilio: not a form".into(),
            err(21000, "form expected"),
        );
    }
    let (mut to, mut from, mut text, mut callback) = (None, None, None, None);
    for (k, v) in form_urlencoded::parse(&body) {
        match &*k {
            "To" => to = Some(v.into_owned()),
            "From" => from = Some(v.into_owned()),
            "Body" => text = Some(v.into_owned()),
            "StatusCallback" => callback = Some(v.into_owned()),
            _ => {}
        }
    }
    let Some(to) = to.filter(|t| t.starts_with('+') && t.len() >= 8) else {
        return st.reject(
            StatusCode::BAD_REQUEST,
            "twilio: To".into(),
            err(21211, "Invalid 'To' Phone Number"),
        );
    };
    if from.as_deref() != Some(TWILIO_FROM) {
        return st.reject(
            StatusCode::BAD_REQUEST,
            format!("twilio: From {from:?}"),
            err(21212, "Invalid From Number"),
        );
    }
    let Some(text) = text.filter(|b| !b.trim().is_empty()) else {
        return st.reject(
            StatusCode::BAD_REQUEST,
            "twilio: Body".into(),
            err(21602, "Message body is required."),
        );
    };
    if callback.as_deref() != Some(&format!("{PUBLIC_URL}/webhooks/twilio/status")) {
        return st.reject(
            StatusCode::BAD_REQUEST,
            format!("twilio: StatusCallback {callback:?}"),
            err(21609, "Invalid StatusCallback"),
        );
    }
    let key = index_after(&text, "F-");
    st.twilio.lock().unwrap().push(Arrival { at_us, key });
    let n = st.seq.fetch_add(1, Ordering::Relaxed);
    let sid = format!("SM{n:032x}");
    let resp = serde_json::json!({
        "account_sid": TWILIO_ACCOUNT, "api_version": "2010-04-01", "body": text,
        "date_created": "Thu, 24 Aug 2023 05:01:45 +0000", "date_sent": null,
        "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000", "direction": "outbound-api",
        "error_code": null, "error_message": null, "from": TWILIO_FROM,
        "messaging_service_sid": null, "num_media": "0", "num_segments": "2", "price": null,
        "price_unit": "USD", "sid": sid, "status": "queued",
        "subresource_uris": {"media": format!("/2010-04-01/Accounts/{TWILIO_ACCOUNT}/Messages/{sid}/Media.json")},
        "to": to, "uri": format!("/2010-04-01/Accounts/{TWILIO_ACCOUNT}/Messages/{sid}.json"),
    });
    (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/json")],
        resp.to_string(),
    )
        .into_response()
}

async fn whatsapp(
    State(st): State<Arc<MockState>>,
    Path((version, phone_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at_us = now_us();
    let err = |code: u32, msg: &str| {
        serde_json::json!({"error": {"message": msg, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf123"}})
            .to_string()
    };
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(format!("Bearer {WA_TOKEN}").as_str())
        || phone_id != WA_PHONE_ID
        || version != "v23.0"
    {
        return st.reject(
            StatusCode::UNAUTHORIZED,
            "whatsapp: bad token, version or phone number id".into(),
            err(190, "Invalid OAuth access token"),
        );
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return st.reject(
            StatusCode::BAD_REQUEST,
            "whatsapp: not JSON".into(),
            err(100, "Invalid parameter"),
        );
    };
    let to = v["to"].as_str().unwrap_or("");
    if v["messaging_product"] != "whatsapp"
        || to.is_empty()
        || !to.bytes().all(|b| b.is_ascii_digit())
    {
        return st.reject(
            StatusCode::BAD_REQUEST,
            format!("whatsapp: messaging_product/to in {v}"),
            err(100, "Invalid parameter"),
        );
    }
    let key = match v["type"].as_str() {
        Some("template") => {
            let t = &v["template"];
            let comps = t["components"].as_array().cloned().unwrap_or_default();
            let body_ok = comps.iter().any(|c| {
                c["type"] == "body"
                    && c["parameters"].as_array().is_some_and(|ps| {
                        !ps.is_empty()
                            && ps
                                .iter()
                                .all(|p| p["type"].as_str().is_some_and(|ty| !p[ty].is_null()))
                    })
            });
            if t["name"].as_str().is_none_or(str::is_empty)
                || t["language"]["code"].as_str().is_none_or(str::is_empty)
                || !body_ok
            {
                return st.reject(
                    StatusCode::BAD_REQUEST,
                    format!("whatsapp: template in {v}"),
                    err(132000, "Number of parameters does not match"),
                );
            }
            comps
                .iter()
                .find(|c| c["type"] == "button")
                .and_then(|c| c["parameters"][0]["text"].as_str())
                .and_then(|s| index_after(s, "inv-"))
        }
        Some("text") => v["text"]["body"]
            .as_str()
            .and_then(|s| index_after(s, "F-")),
        _ => {
            return st.reject(
                StatusCode::BAD_REQUEST,
                format!("whatsapp: type in {v}"),
                err(100, "Invalid parameter"),
            );
        }
    };
    st.whatsapp.lock().unwrap().push(Arrival { at_us, key });
    let n = st.seq.fetch_add(1, Ordering::Relaxed);
    let wamid = format!(
        "wamid.{}",
        base64::engine::general_purpose::STANDARD.encode(format!("HBgL{to}FQIAERgS{n:020}"))
    );
    let resp = serde_json::json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": wamid, "message_status": "accepted"}],
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        resp.to_string(),
    )
        .into_response()
}

async fn webhook(State(st): State<Arc<MockState>>, headers: HeaderMap, body: Bytes) -> Response {
    let at_us = now_us();
    if ["webhook-id", "webhook-timestamp", "webhook-signature"]
        .iter()
        .any(|h| headers.get(*h).is_none())
    {
        return st.reject(
            StatusCode::BAD_REQUEST,
            "webhook: unsigned".into(),
            String::new(),
        );
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return st.reject(
            StatusCode::BAD_REQUEST,
            "webhook: not JSON".into(),
            String::new(),
        );
    };
    let key = v["data"]["invoice_id"]
        .as_str()
        .and_then(|s| index_after(s, "inv-"));
    st.webhook.lock().unwrap().push(Arrival { at_us, key });
    "ok".into_response()
}

/// Starts the mock on its own thread: `threads` = 0 runs a current-thread runtime, otherwise a
/// multi-thread runtime with that many workers. Returns its address and state.
pub fn start(threads: usize) -> (SocketAddr, Arc<MockState>) {
    let state = Arc::new(MockState::default());
    let st = state.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("provider-mock".into())
        .spawn(move || {
            let rt = if threads == 0 {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
            } else {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads)
                    .thread_name("provider-mock-rt")
                    .enable_all()
                    .build()
                    .unwrap()
            };
            rt.block_on(async move {
                let app = axum::Router::new()
                    .route("/2010-04-01/Accounts/{account}/Messages.json", post(twilio))
                    .route("/{version}/{phone_id}/messages", post(whatsapp))
                    .route("/hook", post(webhook))
                    .with_state(st);
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(l.local_addr().unwrap()).unwrap();
                axum::serve(l, app).await.unwrap();
            });
        })
        .unwrap();
    (rx.recv().unwrap(), state)
}

/// Channel tables (the `[channels.NAME]` body, TOML) for the benches, pointing at `base`
/// (`http://127.0.0.1:PORT`; for `smtp`, the sink's `smtp://127.0.0.1:PORT`, with
/// `max_connections` = `DISPATCH_SMTP_CONNECTIONS`, default [`SMTP_CONNECTIONS`]). `rate_limit` appends `rate_limit = { per_second, burst }`.
/// Secrets are named by env var: `PLAZO_TWILIO_TOKEN`, `PLAZO_WA_TOKEN`,
/// `PLAZO_WEBHOOK_SECRET`.
pub fn channel_toml(adapter: &str, base: &str, rate_limit: Option<(f64, u32)>) -> String {
    let mut t = match adapter {
        "twilio" => format!(
            "type = \"twilio\"\nbase_url = \"{base}\"\naccount_sid = \"{TWILIO_ACCOUNT}\"\n\
             auth_token_env = \"PLAZO_TWILIO_TOKEN\"\nfrom = \"{TWILIO_FROM}\"\n"
        ),
        "whatsapp" => format!(
            "type = \"whatsapp\"\nbase_url = \"{base}\"\nphone_number_id = \"{WA_PHONE_ID}\"\n\
             access_token_env = \"PLAZO_WA_TOKEN\"\n"
        ),
        "webhook" => format!(
            "type = \"webhook\"\nurl = \"{base}/hook\"\nsecret_env = \"PLAZO_WEBHOOK_SECRET\"\n"
        ),
        // `base` is the SMTP sink's `smtp://127.0.0.1:PORT`; no TLS, no AUTH (loopback).
        "smtp" => {
            let addr: SocketAddr = base
                .trim_start_matches("smtp://")
                .parse()
                .expect("smtp://IP:PORT");
            format!(
                "type = \"smtp\"\nhost = \"{}\"\nport = {}\nsecurity = \"plain\"\n\
                 from = \"{SMTP_FROM}\"\nhello_name = \"plazo.bench.local\"\n\
                 max_connections = {}\n",
                addr.ip(),
                addr.port(),
                super::env_or("DISPATCH_SMTP_CONNECTIONS", SMTP_CONNECTIONS)
            )
        }
        other => panic!("unknown adapter {other}"),
    };
    if let Some((r, b)) = rate_limit {
        t.push_str(&format!(
            "rate_limit = {{ per_second = {r:?}, burst = {b} }}\n"
        ));
    }
    t
}

/// The secret behind each env var named in [`channel_toml`].
pub fn secret(name: &str) -> Option<String> {
    match name {
        "PLAZO_TWILIO_TOKEN" => Some(TWILIO_TOKEN.into()),
        "PLAZO_WA_TOKEN" => Some(WA_TOKEN.into()),
        "PLAZO_WEBHOOK_SECRET" => Some(super::WEBHOOK_SECRET.into()),
        _ => None,
    }
}

/// Statistics of arrival times (microseconds, any order).
pub struct RateStats {
    pub n: usize,
    pub span_s: f64,
    /// `n / span` (what was asked for; counts one more arrival than intervals).
    pub per_span: f64,
    /// `(n - 1) / span`: the rate of the intervals between arrivals.
    pub intervals_per_s: f64,
    /// Most arrivals in any half-open 1-second window `[t, t + 1 s)`.
    pub max_1s: usize,
    /// Shortest gap between consecutive arrivals, ms.
    pub min_gap_ms: f64,
}

pub fn rate_stats(arrivals: &[i64]) -> RateStats {
    let mut t = arrivals.to_vec();
    t.sort_unstable();
    let n = t.len();
    let span_s = if n > 1 {
        (t[n - 1] - t[0]) as f64 / 1e6
    } else {
        0.0
    };
    let mut max_1s = 0;
    let mut j = 0;
    for i in 0..n {
        while j < n && t[j] < t[i] + 1_000_000 {
            j += 1;
        }
        max_1s = max_1s.max(j - i);
    }
    let min_gap_ms = t
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 / 1000.0)
        .fold(f64::INFINITY, f64::min);
    RateStats {
        min_gap_ms,
        n,
        span_s,
        per_span: n as f64 / span_s,
        intervals_per_s: (n.saturating_sub(1)) as f64 / span_s,
        max_1s,
    }
}
