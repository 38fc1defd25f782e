//! The Twilio channel against a local HTTP server that checks every request and replays
//! Twilio's documented answers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode as AxStatus, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use super::*;
use crate::channels::config::ChannelConfig;
use crate::channels::testutil::{ctx, email};

const SID: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const KEY_SID: &str = "SKbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const MG_SID: &str = "MGcccccccccccccccccccccccccccccccc";
const TOKEN: &str = "f00dfacef00dfacef00dfacef00dface";
const FROM: &str = "+15005550006";
const TEXT: &str =
    "Hola Ana Muñoz: la factura INV-2024-001 vence hoy. Págala aquí 👉 https://pay.example.co/i/x";

/// The channel's (manual) clock.
fn now() -> jiff::Timestamp {
    "2026-03-15T14:00:00Z".parse().unwrap()
}

const EXAMPLES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/twilio_message_create_201_examples.json"
));

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: Option<String>,
    authorization: Option<String>,
    content_type: Option<String>,
    accept: Option<String>,
    form: Vec<(String, String)>,
}

/// Status, headers, body.
type Reply = (u16, Vec<(&'static str, &'static str)>, String);

#[derive(Clone, Default)]
struct Server {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn handle(
    State(s): State<Server>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    s.seen.lock().unwrap().push(Seen {
        method,
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        authorization: h("authorization"),
        content_type: h("content-type"),
        accept: h("accept"),
        form: form_urlencoded::parse(&body).into_owned().collect(),
    });
    let (code, extra, body) = s.replies.lock().unwrap().pop_front().unwrap_or((
        500,
        vec![],
        "no reply queued".to_owned(),
    ));
    let mut resp = (AxStatus::from_u16(code).unwrap(), body).into_response();
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    for (k, v) in extra {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    resp
}

/// Starts a server that answers with `replies` in order; returns its base URL and the server.
async fn server(replies: Vec<Reply>) -> (String, Server) {
    let s = Server::default();
    s.replies.lock().unwrap().extend(replies);
    let app = Router::new().fallback(handle).with_state(s.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), s)
}

fn config(toml_text: &str) -> TwilioConfig {
    let c: ChannelConfig = toml::from_str(&format!("type = \"twilio\"\n{toml_text}")).unwrap();
    match c {
        ChannelConfig::Twilio(t) => t,
        other => panic!("parsed as {}", other.adapter()),
    }
}

fn build_ctx(public_url: Option<&str>) -> BuildContext {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ctx(dir.path(), &[("PLAZO_TWILIO_TOKEN", TOKEN)]);
    c.clock = Arc::new(crate::clock::ManualClock::new(now()));
    c.public_url = public_url.map(|u| reqwest::Url::parse(u).unwrap());
    c
}

/// A channel sending from [`FROM`] through `base`, with `extra` config lines.
fn channel(base: &str, extra: &str, public_url: Option<&str>) -> TwilioChannel {
    let cfg = config(&format!(
        "base_url = \"{base}\"\naccount_sid = \"{SID}\"\nauth_token_env = \"PLAZO_TWILIO_TOKEN\"\n{extra}"
    ));
    TwilioChannel::from_config("sms", &cfg, &build_ctx(public_url)).unwrap()
}

fn sms() -> Outbound {
    let mut m = email("+573001234567", 1);
    m.kind = "sms".to_owned();
    m.subject = None;
    m.html = None;
    m.text = TEXT.to_owned();
    m
}

fn basic_credentials(header: &str) -> String {
    let b64 = header.strip_prefix("Basic ").unwrap();
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn examples() -> Vec<(String, serde_json::Value)> {
    let v: serde_json::Value = serde_json::from_str(EXAMPLES).unwrap();
    v["examples"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, ex)| (name.clone(), ex["value"].clone()))
        .collect()
}

#[tokio::test]
async fn sends_the_exact_request_and_reads_every_documented_201() {
    let examples = examples();
    assert_eq!(examples.len(), 7);
    let replies = examples
        .iter()
        .map(|(_, v)| (201, vec![], v.to_string()))
        .collect();
    let (base, srv) = server(replies).await;
    let ch = channel(
        &base,
        &format!("from = \"{FROM}\"\nvalidity_period = \"2h\"\n"),
        Some("https://cobros.example.co"),
    );
    assert_eq!((ch.name(), ch.adapter()), ("sms", "twilio"));
    assert!(ch.reports_delivery());
    assert!(ch.rate_limiter().is_none());

    let msg = sms();
    for (name, ex) in &examples {
        let r = ch.send(&msg).await.unwrap();
        assert_eq!(
            r.provider_message_id.as_deref(),
            ex["sid"].as_str(),
            "{name}"
        );
        let note = r.note.unwrap();
        assert!(note.contains("segment") && note.contains("UCS-2"), "{note}");
    }
    let e = ch.send(&msg).await.unwrap_err();
    assert!(e.is_transient(), "500 once the replies run out: {e}");

    let seen = srv.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 8);
    for s in &seen {
        assert_eq!(s.method, Method::POST);
        assert_eq!(s.path, format!("/2010-04-01/Accounts/{SID}/Messages.json"));
        assert_eq!(s.query, None);
        assert_eq!(
            basic_credentials(s.authorization.as_deref().unwrap()),
            format!("{SID}:{TOKEN}")
        );
        assert_eq!(
            s.content_type.as_deref(),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(s.accept.as_deref(), Some("application/json"));
        assert_eq!(
            s.form,
            form(&[
                ("To", "+573001234567"),
                ("From", FROM),
                ("Body", TEXT),
                (
                    "StatusCallback",
                    "https://cobros.example.co/webhooks/twilio/status"
                ),
                ("ValidityPeriod", "7200"),
            ])
        );
    }
}

#[tokio::test]
async fn messaging_service_api_key_and_no_public_url() {
    let (base, srv) = server(vec![(201, vec![], examples()[2].1.to_string())]).await;
    let ch = channel(
        &base,
        &format!("messaging_service_sid = \"{MG_SID}\"\napi_key_sid = \"{KEY_SID}\"\n"),
        None,
    );
    assert!(!ch.reports_delivery(), "no StatusCallback, no receipts");
    let r = ch.send(&sms()).await.unwrap();
    assert_eq!(
        r.provider_message_id.as_deref(),
        Some("SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    );
    let seen = srv.seen.lock().unwrap().clone();
    assert_eq!(
        basic_credentials(seen[0].authorization.as_deref().unwrap()),
        format!("{KEY_SID}:{TOKEN}")
    );
    assert_eq!(
        seen[0].path,
        format!("/2010-04-01/Accounts/{SID}/Messages.json")
    );
    assert_eq!(
        seen[0].form,
        form(&[
            ("To", "+573001234567"),
            ("MessagingServiceSid", MG_SID),
            ("Body", TEXT),
        ])
    );
}

#[test]
fn status_callback_url_follows_public_url_and_can_be_off() {
    let base = "https://api.twilio.com";
    let from = format!("from = \"{FROM}\"\n");
    let ch = channel(base, &from, Some("https://cobros.example.co/plazo/"));
    assert_eq!(
        ch.status_callback(),
        Some("https://cobros.example.co/plazo/webhooks/twilio/status")
    );
    assert!(ch.reports_delivery());
    let ch = channel(
        base,
        &format!("{from}status_callback = false\n"),
        Some("https://cobros.example.co"),
    );
    assert_eq!(ch.status_callback(), None);
    assert!(!ch.reports_delivery());
    // The default base URL is Twilio's.
    let cfg = config(&format!(
        "account_sid = \"{SID}\"\nauth_token_env = \"PLAZO_TWILIO_TOKEN\"\n{from}"
    ));
    let ch = TwilioChannel::from_config("sms", &cfg, &build_ctx(None)).unwrap();
    assert_eq!(
        ch.endpoint.as_str(),
        format!("https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json")
    );
    // A base URL with a path keeps it (Twilio-compatible providers).
    let ch = channel("https://sms.example.net/api/laml/", &from, None);
    assert_eq!(
        ch.endpoint.as_str(),
        format!("https://sms.example.net/api/laml/2010-04-01/Accounts/{SID}/Messages.json")
    );
}

fn error_body(code: u32, message: &str, status: u16) -> String {
    serde_json::json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    })
    .to_string()
}

#[tokio::test]
async fn twilio_errors_are_classified() {
    let replies: Vec<Reply> = vec![
        (
            400,
            vec![],
            error_body(21610, "Attempt to send to unsubscribed recipient", 400),
        ),
        (
            400,
            vec![],
            error_body(
                21211,
                "The 'To' number +5730 is not a valid phone number.",
                400,
            ),
        ),
        (401, vec![], error_body(20003, "Authenticate", 401)),
        (
            429,
            vec![("retry-after", "7")],
            error_body(20429, "Too Many Requests", 429),
        ),
        (
            503,
            vec![("content-type", "text/html")],
            "<html>Service Unavailable</html>".to_owned(),
        ),
        (
            400,
            vec![],
            error_body(
                21617,
                "The concatenated message body exceeds the 1600 character limit.",
                400,
            ),
        ),
        (
            201,
            vec![],
            serde_json::json!({"status": "queued", "num_segments": "1"}).to_string(),
        ),
        (
            404,
            vec![],
            error_body(20404, "The requested resource was not found", 404),
        ),
        (
            400,
            vec![],
            serde_json::json!({
                "type": "https://www.twilio.com/docs/errors/21610",
                "title": "Unsubscribed recipient",
                "status": 400,
                "code": 21610,
                "detail": "The recipient replied STOP",
            })
            .to_string(),
        ),
        (403, vec![], String::new()),
    ];
    let (base, _srv) = server(replies).await;
    let ch = channel(
        &base,
        &format!("from = \"{FROM}\"\nrate_limit = {{ per_second = 10.0, burst = 1 }}\n"),
        None,
    );
    let msg = sms();
    let mut errors = Vec::new();
    for _ in 0..10 {
        errors.push(ch.send(&msg).await.unwrap_err());
    }
    let scope = |i: usize| errors[i].scope();

    assert_eq!(scope(0), Some(FailureScope::OptedOut), "{}", errors[0]);
    let text = errors[0].to_string();
    assert!(
        text.contains("21610")
            && text.contains("Attempt to send to unsubscribed recipient")
            && text.contains("https://www.twilio.com/docs/errors/21610"),
        "{text}"
    );

    assert_eq!(scope(1), Some(FailureScope::Address), "{}", errors[1]);
    assert!(errors[1].to_string().contains("21211"));

    assert_eq!(scope(2), Some(FailureScope::Channel), "{}", errors[2]);
    assert!(
        errors[2].to_string().contains("credentials"),
        "{}",
        errors[2]
    );

    assert!(errors[3].is_transient(), "{}", errors[3]);
    assert_eq!(errors[3].retry_after(), Some(Duration::from_secs(7)));
    // The 429 pushed the shared bucket back by about the Retry-After.
    let backlog = ch.rate_limiter().unwrap().stats(now()).backlog;
    assert!(
        backlog > SignedDuration::from_secs(5) && backlog <= SignedDuration::from_secs(7),
        "{backlog:#}"
    );

    assert!(errors[4].is_transient(), "{}", errors[4]);
    assert!(errors[4].to_string().contains("503"), "{}", errors[4]);
    assert!(!errors[4].to_string().contains("html"), "{}", errors[4]);

    assert_eq!(scope(5), Some(FailureScope::Message), "{}", errors[5]);
    assert!(errors[5].to_string().contains("21617"));

    assert!(errors[6].is_permanent(), "{}", errors[6]);
    assert!(
        errors[6].to_string().contains("without a message sid"),
        "{}",
        errors[6]
    );

    assert_eq!(scope(7), Some(FailureScope::Channel), "{}", errors[7]);
    assert!(
        errors[7].to_string().contains("account_sid"),
        "{}",
        errors[7]
    );

    assert_eq!(scope(8), Some(FailureScope::OptedOut), "{}", errors[8]);
    assert!(
        errors[8].to_string().contains("replied STOP"),
        "{}",
        errors[8]
    );

    assert_eq!(scope(9), Some(FailureScope::Channel), "{}", errors[9]);
    assert!(errors[9].to_string().contains("HTTP 403"), "{}", errors[9]);

    for e in &errors {
        assert!(!e.to_string().contains(TOKEN), "{e}");
    }
}

#[test]
fn classification_without_a_server() {
    let now = now();
    let none = reqwest::header::HeaderMap::new();
    let c = |status: u16, body: &str| {
        classify::classify(
            StatusCode::from_u16(status).unwrap(),
            &none,
            body.as_bytes(),
            now,
            TOKEN,
        )
    };
    for code in ADDRESS_ERRORS {
        let e = c(400, &error_body(code, "x", 400));
        assert_eq!(e.scope(), Some(FailureScope::Address), "{code}");
    }
    for code in CREDENTIAL_ERRORS {
        let e = c(401, &error_body(code, "x", 401));
        assert_eq!(e.scope(), Some(FailureScope::Channel), "{code}");
    }
    assert_eq!(
        c(400, &error_body(21609, "Invalid StatusCallback", 400)).scope(),
        Some(FailureScope::Channel)
    );
    // 20429 wins over the status; no code: the status decides.
    assert!(c(400, &error_body(20429, "Too many", 429)).is_transient());
    assert!(c(429, "").is_transient());
    assert!(c(500, "").is_transient());
    assert!(c(408, "").is_transient());
    assert_eq!(c(403, "").scope(), Some(FailureScope::Channel));
    assert_eq!(c(302, "").scope(), Some(FailureScope::Channel));
    assert_eq!(c(422, "{}").scope(), Some(FailureScope::Message));
    assert_eq!(c(400, "not json").scope(), Some(FailureScope::Message));
    // Provider text that echoes the token is redacted.
    let e = c(401, &error_body(20003, &format!("bad token {TOKEN}"), 401));
    assert!(
        !e.to_string().contains(TOKEN) && e.to_string().contains("<redacted>"),
        "{e}"
    );
}

#[tokio::test]
async fn connection_failures_and_timeouts_are_transient() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let from = format!("from = \"{FROM}\"\n");
    let err = channel(&format!("http://127.0.0.1:{port}"), &from, None)
        .send(&sms())
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(!err.to_string().contains(TOKEN), "{err}");

    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    let err = channel(
        &format!("http://{addr}"),
        &format!("{from}timeout = \"300ms\"\n"),
        None,
    )
    .send(&sms())
    .await
    .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn bad_recipient_or_empty_text_fail_before_any_request() {
    let (base, srv) = server(vec![]).await;
    let ch = channel(&base, &format!("from = \"{FROM}\"\n"), None);
    for to in [
        "3001234567",
        "+0123456789",
        "+57 300 123 4567",
        "whatsapp:+573001234567",
        "",
    ] {
        let mut m = sms();
        m.to = to.to_owned();
        let e = ch.send(&m).await.unwrap_err();
        assert_eq!(e.scope(), Some(FailureScope::Address), "{to}: {e}");
    }
    let mut m = sms();
    m.text = " \n".to_owned();
    let e = ch.send(&m).await.unwrap_err();
    assert_eq!(e.scope(), Some(FailureScope::Message), "{e}");
    assert!(srv.seen.lock().unwrap().is_empty());
}

#[test]
fn rate_limiter_is_shared_by_account_and_sender() {
    let c = build_ctx(None);
    let cfg = |from: &str| {
        config(&format!(
            "account_sid = \"{SID}\"\nauth_token_env = \"PLAZO_TWILIO_TOKEN\"\nfrom = \"{from}\"\n\
             rate_limit = {{ per_second = 1.0, burst = 1 }}\n"
        ))
    };
    let a = TwilioChannel::from_config("sms-a", &cfg(FROM), &c).unwrap();
    let b = TwilioChannel::from_config("sms-b", &cfg(FROM), &c).unwrap();
    let other = TwilioChannel::from_config("sms-c", &cfg("+15005550009"), &c).unwrap();
    let (la, lb, lo) = (
        a.rate_limiter().unwrap(),
        b.rate_limiter().unwrap(),
        other.rate_limiter().unwrap(),
    );
    assert!(Arc::ptr_eq(la, lb));
    assert!(!Arc::ptr_eq(la, lo));
    assert_eq!(la.key(), format!("twilio:{SID}:{FROM}"));
    let t = jiff::Timestamp::from_second(1_700_000_000).unwrap();
    assert_eq!(la.reserve(t), t);
    assert_eq!(
        lb.reserve(t),
        t + SignedDuration::from_secs(1),
        "one bucket"
    );
    assert_eq!(lo.reserve(t), t);

    let ms = config(&format!(
        "account_sid = \"{SID}\"\nauth_token_env = \"PLAZO_TWILIO_TOKEN\"\n\
         messaging_service_sid = \"{MG_SID}\"\nrate_limit = {{ per_second = 3.0 }}\n"
    ));
    let ms = TwilioChannel::from_config("sms-mg", &ms, &c).unwrap();
    assert_eq!(
        ms.rate_limiter().unwrap().key(),
        format!("twilio:{SID}:{MG_SID}")
    );
}

/// Builds `lines` (after `type = "twilio"`) and returns the error.
fn build_err(lines: &str, vars: &[(&str, &str)]) -> ChannelBuildError {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(lines);
    let mut c = ctx(dir.path(), vars);
    c.public_url = Some(reqwest::Url::parse("https://cobros_x.example.co").unwrap());
    TwilioChannel::from_config("sms", &cfg, &c).unwrap_err()
}

#[test]
fn config_errors_are_clear() {
    let vars = [("T", TOKEN)];
    let sid = format!("account_sid = \"{SID}\"\n");
    let from = format!("from = \"{FROM}\"\n");
    let token = "auth_token_env = \"T\"\nstatus_callback = false\n";

    let e = build_err(&format!("{sid}{from}"), &vars);
    assert_eq!(e.field(), "auth_token_env");
    assert!(
        e.to_string().contains("auth_token_env") && e.to_string().contains("auth_token_file"),
        "{e}"
    );

    let e = build_err(
        &format!("{sid}{from}auth_token_env = \"T\"\nauth_token_file = \"t\"\n"),
        &vars,
    );
    assert!(e.to_string().contains("not both"), "{e}");

    let e = build_err(&format!("{sid}{from}auth_token_env = \"NOPE\"\n"), &vars);
    assert_eq!(
        e.to_string(),
        "channel 'sms': auth_token_env NOPE is not set; export it or use auth_token_file"
    );

    let e = build_err(&format!("account_sid = \"AC123\"\n{from}{token}"), &vars);
    assert_eq!(e.field(), "account_sid");
    assert!(e.to_string().contains("32 hex digits"), "{e}");
    let e = build_err(
        &format!(
            "account_sid = \"{}\"\n{from}{token}",
            SID.replace("AC", "SK")
        ),
        &vars,
    );
    assert_eq!(e.field(), "account_sid");

    let e = build_err(
        &format!("{sid}{from}messaging_service_sid = \"{MG_SID}\"\n{token}"),
        &vars,
    );
    assert_eq!(e.field(), "from");
    assert!(e.to_string().contains("not both"), "{e}");

    let e = build_err(&format!("{sid}{token}"), &vars);
    assert_eq!(e.field(), "from");
    assert!(e.to_string().contains("messaging_service_sid"), "{e}");

    for bad in [
        "3001234567",
        "+57 300",
        "whatsapp:+15005550006",
        "ACME CORP LTD",
    ] {
        let e = build_err(&format!("{sid}from = \"{bad}\"\n{token}"), &vars);
        assert_eq!(e.field(), "from", "{bad}");
        assert!(e.to_string().contains("E.164"), "{e}");
    }
    let e = build_err(
        &format!("{sid}messaging_service_sid = \"MG1\"\n{token}"),
        &vars,
    );
    assert_eq!(e.field(), "messaging_service_sid");
    let e = build_err(
        &format!("{sid}{from}api_key_sid = \"{SID}\"\n{token}"),
        &vars,
    );
    assert_eq!(e.field(), "api_key_sid");

    for v in ["\"0s\"", "\"36001s\"", "\"1.5s\"", "\"-5s\""] {
        let e = build_err(&format!("{sid}{from}{token}validity_period = {v}\n"), &vars);
        assert_eq!(e.field(), "validity_period", "{v}");
        assert!(e.to_string().contains("36000s"), "{e}");
    }
    for url in [
        "ftp://x.example",
        "not a url",
        "https://api.twilio.com/?x=1",
    ] {
        let e = build_err(&format!("{sid}{from}{token}base_url = \"{url}\"\n"), &vars);
        assert_eq!(e.field(), "base_url", "{url}");
    }
    let e = build_err(&format!("{sid}{from}{token}timeout = \"-1s\"\n"), &vars);
    assert_eq!(e.field(), "timeout");
    let e = build_err(
        &format!("{sid}{from}{token}rate_limit = {{ per_second = 0.0 }}\n"),
        &vars,
    );
    assert_eq!(e.field(), "rate_limit");
    // The public URL has an underscore in its host: Twilio would refuse every StatusCallback.
    let e = build_err(&format!("{sid}{from}auth_token_env = \"T\"\n"), &vars);
    assert_eq!(e.field(), "status_callback");
    assert!(e.to_string().contains("underscore"), "{e}");

    // Unknown fields are refused by name.
    let r: Result<ChannelConfig, _> = toml::from_str(&format!(
        "type = \"twilio\"\n{sid}{from}auth_token = \"{TOKEN}\"\n"
    ));
    let e = r.unwrap_err().to_string();
    assert!(e.contains("auth_token"), "{e}");
}

#[test]
fn token_file_and_channel_config_build() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("twilio.token"), format!("{TOKEN}\n")).unwrap();
    #[cfg(unix)]
    {
        // Secret files must be private (plazo refuses ones others can read).
        use std::os::unix::fs::PermissionsExt;
        let private = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(dir.path().join("twilio.token"), private).unwrap();
    }
    let c: ChannelConfig = toml::from_str(&format!(
        "type = \"twilio\"\naccount_sid = \"{SID}\"\nauth_token_file = \"twilio.token\"\n\
         from = \"{FROM}\"\ntimeout = \"10s\"\nvalidity_period = \"36000s\"\n\
         rate_limit = {{ per_second = 1.0, burst = 2 }}\n"
    ))
    .unwrap();
    assert_eq!(c.adapter(), "twilio");
    let ch = c.build("sms", &ctx(dir.path(), &[])).unwrap();
    assert_eq!((ch.name(), ch.adapter()), ("sms", "twilio"));
    assert!(ch.rate_limiter().is_some());
}

#[test]
fn debug_output_never_shows_the_token() {
    let cfg = config(&format!(
        "account_sid = \"{SID}\"\nauth_token_env = \"PLAZO_TWILIO_TOKEN\"\nfrom = \"{FROM}\"\n\
         rate_limit = {{ per_second = 1.0 }}\n"
    ));
    let ch = TwilioChannel::from_config("sms", &cfg, &build_ctx(Some("https://cobros.example.co")))
        .unwrap();
    let dbg = format!("{ch:?} {ch:#?} {cfg:?} {cfg:#?}");
    assert!(!dbg.contains(TOKEN), "{dbg}");
    assert!(dbg.contains(SID) && dbg.contains(FROM), "{dbg}");
}

#[test]
fn e164_and_sender_checks() {
    for ok in [
        "+573001234567",
        "+15005550006",
        "+4930123456",
        "+123456789012345",
    ] {
        assert!(is_e164(ok), "{ok}");
    }
    for bad in [
        "573001234567",
        "+0573001234567",
        "+1234",
        "+1234567890123456",
        "+57-300",
        "",
    ] {
        assert!(!is_e164(bad), "{bad}");
    }
    for ok in ["+15005550006", "55555", "ACME", "Cartera 24", "Plazo"] {
        assert!(is_sender(ok), "{ok}");
    }
    for bad in ["12", "ACME CORP LTD", "Ñandú", " ACME", "+1 500"] {
        assert!(!is_sender(bad), "{bad}");
    }
}
