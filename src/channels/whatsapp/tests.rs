//! Adapter tests against a local HTTP server standing in for the Graph API.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::*;
use crate::channels::config::ChannelConfig;
use crate::channels::testutil::{ctx, email};
use crate::channels::{SharedChannel, TemplateParam};

const TOKEN: &str = "EAAGtestTOKEN0123456789abcdefXYZ";
const PHONE_ID: &str = "106540352242922";
const WAMID: &str = "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA";

/// One request the server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: Value,
}

/// A canned answer: status, extra headers, body.
type Canned = (u16, Vec<(&'static str, &'static str)>, String);

#[derive(Clone, Default)]
struct Graph {
    seen: Arc<Mutex<Vec<Seen>>>,
    answers: Arc<Mutex<VecDeque<Canned>>>,
}

impl Graph {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    fn answer(&self, status: u16, headers: Vec<(&'static str, &'static str)>, body: Value) {
        self.answers
            .lock()
            .unwrap()
            .push_back((status, headers, body.to_string()));
    }
}

async fn graph_handler(
    State(g): State<Graph>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    g.seen.lock().unwrap().push(Seen {
        method,
        path: uri.path().to_owned(),
        authorization: h("authorization"),
        content_type: h("content-type"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let (status, extra, body) = g
        .answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| (200, vec![], success().to_string()));
    let mut resp = (StatusCode::from_u16(status).unwrap(), body).into_response();
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    for (k, v) in extra {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    resp
}

/// Starts the fake Graph API; returns its base URL and handle.
async fn graph() -> (String, Graph) {
    let g = Graph::default();
    let app = Router::new().fallback(graph_handler).with_state(g.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), g)
}

fn success() -> Value {
    json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": "573001234567", "wa_id": "573001234567"}],
        "messages": [{"id": WAMID}]
    })
}

fn graph_error(code: i64, message: &str, details: &str) -> Value {
    json!({"error": {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details},
        "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"
    }})
}

fn channel(base: &str) -> SharedChannel {
    let cfg: ChannelConfig = toml::from_str(&format!(
        "type = \"whatsapp\"\nbase_url = \"{base}\"\nphone_number_id = \"{PHONE_ID}\"\n\
         access_token_env = \"PLAZO_WA_TOKEN\"\ntimeout = \"5s\"\n"
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    cfg.build("wa", &ctx(dir.path(), &[("PLAZO_WA_TOKEN", TOKEN)]))
        .unwrap()
}

fn invoice_template() -> WhatsAppTemplate {
    WhatsAppTemplate {
        name: "recordatorio_pago".to_owned(),
        language: "es_CO".to_owned(),
        body: vec![
            TemplateParam::Text {
                text: "Ana".to_owned(),
            },
            TemplateParam::Currency {
                fallback_value: "$1.250.000".to_owned(),
                code: "COP".to_owned(),
                amount_1000: 1_250_000_000,
            },
            TemplateParam::DateTime {
                fallback_value: "15 de marzo de 2026".to_owned(),
            },
        ],
        button_url: Some("inv_1001_tok".to_owned()),
    }
}

fn wa(session_open: bool, template: Option<WhatsAppTemplate>) -> Outbound {
    let mut m = email("+573001234567", 1);
    m.kind = "whatsapp".to_owned();
    m.subject = None;
    m.html = None;
    m.unsubscribe_url = None;
    m.whatsapp = Some(WhatsAppContent {
        session_open,
        template,
    });
    m
}

/// Asserts method, path and headers of a request, and returns its body.
fn checked(s: &Seen) -> &Value {
    assert_eq!(s.method, Method::POST);
    assert_eq!(s.path, format!("/v23.0/{PHONE_ID}/messages"));
    assert_eq!(
        s.authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(s.content_type.as_deref(), Some("application/json"));
    &s.body
}

fn template_body(msg: &Outbound, template: Value) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "573001234567",
        "type": "template",
        "template": template,
        "biz_opaque_callback_data": msg.reminder_id.to_string(),
    })
}

#[tokio::test]
async fn sends_template_with_params_and_url_button() {
    let (base, g) = graph().await;
    let ch = channel(&base);
    assert_eq!((ch.name(), ch.adapter()), ("wa", "whatsapp"));
    assert!(ch.reports_delivery());
    assert!(ch.rate_limiter().is_none());
    let msg = wa(false, Some(invoice_template()));
    let r = ch.send(&msg).await.unwrap();
    assert_eq!(r.provider_message_id.as_deref(), Some(WAMID));
    assert_eq!(
        r.note.as_deref(),
        Some("template recordatorio_pago (es_CO)")
    );

    let seen = g.seen();
    assert_eq!(seen.len(), 1);
    let expected = template_body(
        &msg,
        json!({
            "name": "recordatorio_pago",
            "language": {"code": "es_CO"},
            "components": [
                {"type": "body", "parameters": [
                    {"type": "text", "text": "Ana"},
                    {"type": "currency", "currency": {
                        "fallback_value": "$1.250.000", "code": "COP", "amount_1000": 1_250_000_000_i64}},
                    {"type": "date_time", "date_time": {"fallback_value": "15 de marzo de 2026"}}
                ]},
                {"type": "button", "sub_type": "url", "index": "0",
                 "parameters": [{"type": "text", "text": "inv_1001_tok"}]}
            ]
        }),
    );
    assert_eq!(checked(&seen[0]), &expected);
}

#[tokio::test]
async fn sends_template_without_params() {
    let (base, g) = graph().await;
    let ch = channel(&base);
    let t = WhatsAppTemplate {
        name: "aviso_simple".to_owned(),
        language: "es".to_owned(),
        body: vec![],
        button_url: None,
    };
    let msg = wa(false, Some(t));
    let r = ch.send(&msg).await.unwrap();
    assert_eq!(r.note.as_deref(), Some("template aviso_simple (es)"));
    let expected = template_body(
        &msg,
        json!({"name": "aviso_simple", "language": {"code": "es"}}),
    );
    assert_eq!(checked(&g.seen()[0]), &expected);

    // Only a button: the body component is left out.
    let t = WhatsAppTemplate {
        name: "aviso_boton".to_owned(),
        language: "es".to_owned(),
        body: vec![],
        button_url: Some("tok".to_owned()),
    };
    let msg = wa(true, Some(t));
    let mut msg = msg;
    msg.text = "  ".to_owned(); // window open but nothing to say: the template goes
    ch.send(&msg).await.unwrap();
    let expected = template_body(
        &msg,
        json!({"name": "aviso_boton", "language": {"code": "es"}, "components": [
            {"type": "button", "sub_type": "url", "index": "0",
             "parameters": [{"type": "text", "text": "tok"}]}
        ]}),
    );
    assert_eq!(checked(&g.seen()[1]), &expected);
}

#[tokio::test]
async fn sends_free_form_text_inside_the_window() {
    let (base, g) = graph().await;
    let ch = channel(&base);
    let msg = wa(true, Some(invoice_template()));
    let r = ch.send(&msg).await.unwrap();
    assert_eq!(
        r,
        Receipt {
            provider_message_id: Some(WAMID.to_owned()),
            note: Some("text (24-hour window open)".to_owned()),
        }
    );
    let seen = g.seen();
    assert_eq!(seen.len(), 1);
    let expected = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "573001234567",
        "type": "text",
        "text": {"body": "Hola Ana, la factura INV-2024-001 vence hoy.", "preview_url": false},
        "biz_opaque_callback_data": msg.reminder_id.to_string(),
    });
    assert_eq!(checked(&seen[0]), &expected);
}

#[tokio::test]
async fn window_rejection_falls_back_to_the_template() {
    let (base, g) = graph().await;
    let ch = channel(&base);
    g.answer(
        400,
        vec![],
        graph_error(
            131047,
            "(#131047) Re-engagement message",
            "Message failed to send because more than 24 hours have passed since the customer \
             last replied to this number.",
        ),
    );
    let msg = wa(true, Some(invoice_template()));
    let r = ch.send(&msg).await.unwrap();
    assert_eq!(r.provider_message_id.as_deref(), Some(WAMID));
    assert_eq!(
        r.note.as_deref(),
        Some("template recordatorio_pago (es_CO)")
    );
    let seen = g.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(checked(&seen[0])["type"], "text");
    let second = checked(&seen[1]);
    assert_eq!(second["type"], "template");
    assert_eq!(second["template"]["name"], "recordatorio_pago");
    assert_eq!(
        second["biz_opaque_callback_data"],
        msg.reminder_id.to_string()
    );
}

#[tokio::test]
async fn window_closed_without_template_sends_nothing() {
    let (base, g) = graph().await;
    let ch = channel(&base);
    for msg in [wa(false, None), {
        let mut m = wa(false, None);
        m.whatsapp = None;
        m
    }] {
        let err = ch.send(&msg).await.unwrap_err();
        assert_eq!(err.scope(), Some(FailureScope::WindowClosed), "{err}");
        assert!(
            err.to_string().contains("map the step to a template"),
            "{err}"
        );
    }
    // Window open but no text and no template: nothing to send either.
    let mut empty = wa(true, None);
    empty.text = String::new();
    let err = ch.send(&empty).await.unwrap_err();
    assert_eq!(err.scope(), Some(FailureScope::Message), "{err}");
    assert!(g.seen().is_empty());
}

#[tokio::test]
async fn bad_recipient_is_an_address_error_without_request() {
    let (base, g) = graph().await;
    let mut msg = wa(false, Some(invoice_template()));
    msg.to = "ana@example.co".to_owned();
    let err = channel(&base).send(&msg).await.unwrap_err();
    assert_eq!(err.scope(), Some(FailureScope::Address), "{err}");
    assert!(g.seen().is_empty());
}

#[tokio::test]
async fn error_replays_are_classified() {
    let (base, g) = graph().await;
    let ch = channel(&base);
    let tmpl = wa(false, Some(invoice_template()));

    g.answer(
        400,
        vec![],
        graph_error(
            131026,
            "(#131026) Message Undeliverable.",
            "Message Undeliverable.",
        ),
    );
    let err = ch.send(&tmpl).await.unwrap_err();
    assert_eq!(err.scope(), Some(FailureScope::Address), "{err}");
    assert!(err.to_string().contains("code 131026"), "{err}");
    assert!(
        err.to_string()
            .contains("fbtrace_id Az8or2yhqkZfEZ-_4Qn_Bam"),
        "{err}"
    );

    // Free-form refused with 131047 and no template to fall back to.
    g.answer(
        400,
        vec![],
        graph_error(
            131047,
            "(#131047) Re-engagement message",
            "24 hours have passed",
        ),
    );
    let err = ch.send(&wa(true, None)).await.unwrap_err();
    assert_eq!(err.scope(), Some(FailureScope::WindowClosed), "{err}");
    assert!(err.to_string().contains("24 hours have passed"), "{err}");

    g.answer(
        429,
        vec![("retry-after", "17")],
        graph_error(
            130429,
            "(#130429) Rate limit hit",
            "Cloud API message throughput has been reached.",
        ),
    );
    let err = ch.send(&tmpl).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(17)));

    g.answer(
        400,
        vec![],
        graph_error(
            131056,
            "(#131056) (Business Account, Consumer Account) pair rate limit hit",
            "x",
        ),
    );
    let err = ch.send(&tmpl).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.retry_after() >= Some(Duration::from_secs(6)), "{err:?}");

    g.answer(
        401,
        vec![],
        graph_error(
            190,
            "Error validating access token: Session has expired.",
            "",
        ),
    );
    let err = ch.send(&tmpl).await.unwrap_err();
    assert_eq!(err.scope(), Some(FailureScope::Channel), "{err}");
    assert!(err.to_string().contains("access token"), "{err}");

    g.answer(
        404,
        vec![],
        graph_error(
            132001,
            "(#132001) Template name does not exist in the translation",
            "template name (recordatorio_pago) does not exist in es_CO",
        ),
    );
    let err = ch.send(&tmpl).await.unwrap_err();
    assert_eq!(err.scope(), Some(FailureScope::Message), "{err}");
    assert!(err.to_string().contains("template not found"), "{err}");

    g.answer(
        500,
        vec![],
        json!({"error": {"message": "An unknown error occurred", "code": 1}}),
    );
    assert!(ch.send(&tmpl).await.unwrap_err().is_transient());
    g.answer(503, vec![], Value::String("upstream down".to_owned()));
    assert!(ch.send(&tmpl).await.unwrap_err().is_transient());

    // A server echoing the token in its error never gets it into our message.
    g.answer(
        400,
        vec![],
        graph_error(100, &format!("Invalid parameter near Bearer {TOKEN}"), ""),
    );
    let err = ch.send(&tmpl).await.unwrap_err();
    assert_eq!(err.scope(), Some(FailureScope::Message));
    assert!(!err.to_string().contains(TOKEN), "{err}");
    assert!(err.to_string().contains("<redacted>"), "{err}");

    assert_eq!(g.seen().len(), 9);
}

#[tokio::test]
async fn closed_port_is_transient() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = channel(&format!("http://127.0.0.1:{port}"))
        .send(&wa(false, Some(invoice_template())))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(!err.to_string().contains(TOKEN), "{err}");
}

#[tokio::test]
async fn success_without_wamid_is_still_accepted() {
    let (base, g) = graph().await;
    g.answer(200, vec![], json!({"messaging_product": "whatsapp"}));
    let r = channel(&base)
        .send(&wa(false, Some(invoice_template())))
        .await
        .unwrap();
    assert_eq!(r.provider_message_id, None);
}

fn build(toml_text: &str, vars: &[(&str, &str)]) -> Result<SharedChannel, ChannelBuildError> {
    let cfg: ChannelConfig = toml::from_str(toml_text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    cfg.build("wa", &ctx(dir.path(), vars))
}

#[test]
fn config_errors_are_clear() {
    let vars = [("T", TOKEN)];
    let e = build(
        "type = \"whatsapp\"\nphone_number_id = \"106540352242922\"\n",
        &vars,
    )
    .err()
    .unwrap();
    assert_eq!(e.field(), "access_token_env");
    assert!(e.to_string().contains("access_token_file"), "{e}");

    let e = build(
        "type = \"whatsapp\"\nphone_number_id = \"1\"\naccess_token_env = \"MISSING\"\n",
        &vars,
    )
    .err()
    .unwrap();
    assert_eq!(
        e.to_string(),
        "channel 'wa': access_token_env MISSING is not set; export it or use access_token_file"
    );

    for bad in ["23.0", "v23", "v23.0.1", "latest", "v.0", "V23.0"] {
        let e = build(
            &format!(
                "type = \"whatsapp\"\nphone_number_id = \"1\"\napi_version = \"{bad}\"\naccess_token_env = \"T\"\n"
            ),
            &vars,
        )
        .err()
        .unwrap();
        assert_eq!(e.field(), "api_version", "{bad}");
        assert!(e.to_string().contains("v23.0"), "{e}");
    }

    for bad in ["+573001234567", "", "10654abc", "1065 4035"] {
        let e = build(
            &format!(
                "type = \"whatsapp\"\nphone_number_id = \"{bad}\"\naccess_token_env = \"T\"\n"
            ),
            &vars,
        )
        .err()
        .unwrap();
        assert_eq!(e.field(), "phone_number_id", "{bad}");
        assert!(e.to_string().contains("digits only"), "{e}");
    }

    let e = build(
        "type = \"whatsapp\"\nphone_number_id = \"1\"\naccess_token_env = \"T\"\nbase_url = \"ftp://x\"\n",
        &vars,
    )
    .err()
    .unwrap();
    assert_eq!(e.field(), "base_url");

    let e = build(
        "type = \"whatsapp\"\nphone_number_id = \"1\"\naccess_token_env = \"T\"\nrate_limit = { per_second = 0.0 }\n",
        &vars,
    )
    .err()
    .unwrap();
    assert_eq!(e.field(), "rate_limit");

    let e = build(
        "type = \"whatsapp\"\nphone_number_id = \"1\"\naccess_token_env = \"T\"\n",
        &[("T", "two words")],
    )
    .err()
    .unwrap();
    assert_eq!(e.field(), "access_token_env");
    assert!(!e.to_string().contains("two words"), "{e}");

    let e = toml::from_str::<ChannelConfig>(
        "type = \"whatsapp\"\nphone_number_id = \"1\"\naccess_token = \"x\"\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("access_token"), "{e}");
}

#[test]
fn config_defaults_integer_id_and_shared_rate_limit() {
    let cfg: ChannelConfig = toml::from_str(
        "type = \"whatsapp\"\nphone_number_id = 106540352242922\naccess_token_env = \"T\"\n\
         rate_limit = { per_second = 80.0, burst = 10 }\n",
    )
    .unwrap();
    assert_eq!(cfg.adapter(), "whatsapp");
    let ChannelConfig::Whatsapp(c) = &cfg else {
        panic!()
    };
    assert_eq!(c.phone_number_id, PHONE_ID);
    let dir = tempfile::tempdir().unwrap();
    let context = ctx(dir.path(), &[("T", TOKEN)]);
    let a = WhatsAppChannel::from_config("a", c, &context).unwrap();
    let b = cfg.build("b", &context).unwrap();
    assert_eq!(
        a.endpoint.as_str(),
        format!("https://graph.facebook.com/v23.0/{PHONE_ID}/messages")
    );
    let la = a.rate_limiter().unwrap();
    assert_eq!(la.key(), format!("whatsapp:{PHONE_ID}"));
    assert!(Arc::ptr_eq(la, b.rate_limiter().unwrap()));

    // A base URL with a path prefix and trailing slash, another version.
    let c = WhatsAppConfig {
        base_url: Some("http://127.0.0.1:9/graph/".to_owned()),
        api_version: Some("v24.1".to_owned()),
        ..c.clone()
    };
    let ch = WhatsAppChannel::from_config("c", &c, &context).unwrap();
    assert_eq!(
        ch.endpoint.as_str(),
        format!("http://127.0.0.1:9/graph/v24.1/{PHONE_ID}/messages")
    );
}

#[test]
fn debug_never_shows_the_token() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wa.token"), format!("{TOKEN}\n")).unwrap();
    #[cfg(unix)]
    {
        // Secret files must be private (plazo refuses ones others can read).
        use std::os::unix::fs::PermissionsExt;
        let private = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(dir.path().join("wa.token"), private).unwrap();
    }
    let cfg: ChannelConfig = toml::from_str(
        "type = \"whatsapp\"\nphone_number_id = \"106540352242922\"\naccess_token_file = \"wa.token\"\n",
    )
    .unwrap();
    let ChannelConfig::Whatsapp(c) = &cfg else {
        panic!()
    };
    let ch = WhatsAppChannel::from_config("wa", c, &ctx(dir.path(), &[])).unwrap();
    let shown = format!("{ch:?} {ch:#?} {cfg:?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(!shown.contains("EAAG"), "{shown}");
    assert!(shown.contains("WhatsAppChannel"), "{shown}");
    assert!(format!("{:?}", ch.auth).contains("Sensitive"));
}
