//! Mercado Pago: the derived signature vector, notification parsing, exact amounts, the fetch
//! against a local HTTP server replaying the SDK's payment fixture, and the status mapping.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode as AxStatus, Uri};
use axum::response::{IntoResponse, Response};
use rust_decimal::Decimal;

use super::*;

const PAYMENT_FIXTURE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/mercadopago_payment_get_mock.json"
));
const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/signature_test_vectors.json"
));
const TOKEN: &str = "APP_USR-1234567890123456-052513-0123456789abcdef0123456789abcdef-987654321";

#[derive(serde::Deserialize)]
struct Vector {
    secret: String,
    data_id: String,
    x_request_id: String,
    ts: String,
    manifest: String,
    expected_v1: String,
    header: String,
}

fn vector() -> Vector {
    let mut all: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
    let mut vs: Vec<Vector> = serde_json::from_value(all["mercadopago"].take()).unwrap();
    assert_eq!(vs.len(), 1);
    vs.remove(0)
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Signature
// ---------------------------------------------------------------------------------------------

#[test]
fn derived_vector_verifies() {
    let v = vector();
    assert_eq!(
        manifest(Some(&v.data_id), Some(&v.x_request_id), &v.ts),
        v.manifest
    );
    assert_eq!(
        sign(&v.secret, Some(&v.data_id), Some(&v.x_request_id), &v.ts),
        v.header
    );
    assert!(v.header.ends_with(&v.expected_v1));
    verify(
        &v.secret,
        Some(&v.header),
        Some(&v.x_request_id),
        Some(&v.data_id),
    )
    .unwrap();
    // A secret read from a file with its newline still verifies.
    verify(
        &format!("{}\n", v.secret),
        Some(&v.header),
        Some(&v.x_request_id),
        Some(&v.data_id),
    )
    .unwrap();
}

#[test]
fn tampered_ts_v1_data_id_request_id_and_secret_are_rejected() {
    let v = vector();
    let rid = Some(v.x_request_id.as_str());
    let id = Some(v.data_id.as_str());
    let mismatch = Err(MercadoPagoSignatureError::Mismatch);

    let other_ts = v.header.replace("ts=1742505638683", "ts=1742505638684");
    assert_eq!(verify(&v.secret, Some(&other_ts), rid, id), mismatch);

    let mut other_v1 = v.header.clone();
    other_v1.pop();
    other_v1.push('d'); // last hex digit was 'c'
    assert_eq!(verify(&v.secret, Some(&other_v1), rid, id), mismatch);

    let other_id = Some("ord01jq4s4ky8hwq6na5pxb65b3d4");
    assert_eq!(verify(&v.secret, Some(&v.header), rid, other_id), mismatch);

    let other_rid = Some("2066ca19-c6f1-498a-be75-1923005edd07");
    assert_eq!(verify(&v.secret, Some(&v.header), other_rid, id), mismatch);

    // Leaving a pair out changes the manifest too.
    assert_eq!(verify(&v.secret, Some(&v.header), None, id), mismatch);
    assert_eq!(verify(&v.secret, Some(&v.header), rid, None), mismatch);

    let err = verify("another_secret", Some(&v.header), rid, id).unwrap_err();
    assert_eq!(err, MercadoPagoSignatureError::Mismatch);
    assert!(err.to_string().contains("Your integrations"), "{err}");
}

#[test]
fn missing_request_id_round_trip() {
    let secret = "your_secret_key_here";
    let id = Some("1234567890");
    assert_eq!(
        manifest(id, None, "1742505638"),
        "id:1234567890;ts:1742505638;"
    );
    assert_eq!(manifest(id, Some("  "), "1"), "id:1234567890;ts:1;");
    assert_eq!(
        manifest(None, Some("r-1"), "1"),
        "request-id:r-1;ts:1;",
        "a missing data.id is left out too"
    );
    let header = sign(secret, id, None, "1742505638");
    verify(secret, Some(&header), None, id).unwrap();
    verify(secret, Some(&header), Some(""), id).unwrap();
    verify(secret, Some(&header), Some("   "), id).unwrap();
    assert_eq!(
        verify(secret, Some(&header), Some("r-1"), id),
        Err(MercadoPagoSignatureError::Mismatch)
    );

    let header = sign(secret, None, Some("r-1"), "1742505638");
    verify(secret, Some(&header), Some("r-1"), None).unwrap();
    verify(secret, Some(&header), Some("r-1"), Some(" ")).unwrap();
}

#[test]
fn upper_case_data_id_verifies_via_lower_case_fallback() {
    let v = vector();
    let upper = v.data_id.to_ascii_uppercase();
    assert!(upper.starts_with("ORD01"));
    // Signed over the lower-cased id, received upper-case.
    verify(
        &v.secret,
        Some(&v.header),
        Some(&v.x_request_id),
        Some(&upper),
    )
    .unwrap();
    // Signed over the id exactly as received (the SDK's way) also verifies.
    let as_received = sign(&v.secret, Some(&upper), Some(&v.x_request_id), &v.ts);
    assert_ne!(as_received, v.header);
    verify(
        &v.secret,
        Some(&as_received),
        Some(&v.x_request_id),
        Some(&upper),
    )
    .unwrap();
    // There is no upper-casing fallback: an upper-case signature, lower-case id.
    assert_eq!(
        verify(
            &v.secret,
            Some(&as_received),
            Some(&v.x_request_id),
            Some(&v.data_id)
        ),
        Err(MercadoPagoSignatureError::Mismatch)
    );
}

#[test]
fn malformed_headers_are_rejected() {
    let v = vector();
    let check =
        |header: Option<&str>| verify(&v.secret, header, Some(&v.x_request_id), Some(&v.data_id));
    for missing in [None, Some(""), Some("  ")] {
        let err = check(missing).unwrap_err();
        assert_eq!(err, MercadoPagoSignatureError::MissingHeader);
        assert!(err.to_string().contains("x-signature"), "{err}");
    }
    let hex = &v.expected_v1;
    for bad in [
        "garbage".to_owned(),
        "ts=1742505638683".to_owned(),
        format!("v1={hex}"),
        format!("ts=,v1={hex}"),
        format!("ts=17425056x8683,v1={hex}"),
        format!("ts=-1742505638683,v1={hex}"),
        format!("ts=1,ts=1742505638683,v1={hex}"),
        "ts=1742505638683,v1=633f9123".to_owned(),
        format!("ts=1742505638683,v1={}", hex.replace('a', "z")),
        format!("ts=1742505638683,v2={hex}"),
        format!("ts=1742505638683;v1={hex}"),
    ] {
        match check(Some(&bad)) {
            Err(MercadoPagoSignatureError::Malformed(why)) => {
                assert!(!why.is_empty(), "{bad}");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    let err = check(Some("ts=abc,v1=00")).unwrap_err();
    assert!(
        err.to_string().starts_with("malformed x-signature header"),
        "{err}"
    );

    // Keys are trimmed and lower-cased, values trimmed, unknown items and items without `=`
    // skipped, upper-case hex accepted, and any of several v1 may match.
    for ok in [
        format!(" TS = {} , V1 = {} ", v.ts, hex),
        format!("ts={},v1={}", v.ts, hex.to_ascii_uppercase()),
        format!("foo,v2=abc,ts={},x=y,v1={}", v.ts, hex),
        format!("ts={},v1={},v1={}", v.ts, "0".repeat(64), hex),
    ] {
        check(Some(&ok)).unwrap();
    }

    assert_eq!(
        verify(
            " \n",
            Some(&v.header),
            Some(&v.x_request_id),
            Some(&v.data_id)
        ),
        Err(MercadoPagoSignatureError::EmptySecret)
    );
}

#[test]
fn tolerance_accepts_both_ts_units() {
    let v = vector();
    let check = |header: &str, now: jiff::Timestamp, tol: Option<Duration>| {
        verify_with_tolerance(
            &v.secret,
            Some(header),
            Some(&v.x_request_id),
            Some(&v.data_id),
            now,
            tol,
        )
    };
    let five_min = Some(Duration::from_secs(300));
    // The vector's ts is in milliseconds: 2025-03-20T21:20:38.683Z.
    let signed_at = jiff::Timestamp::from_millisecond(1_742_505_638_683).unwrap();
    let secs = |s: i64| jiff::SignedDuration::from_secs(s);
    check(&v.header, signed_at, five_min).unwrap();
    check(&v.header, signed_at + secs(300), five_min).unwrap();
    check(&v.header, signed_at - secs(300), five_min).unwrap();
    let err = check(&v.header, signed_at + secs(301), five_min).unwrap_err();
    assert_eq!(
        err,
        MercadoPagoSignatureError::Stale {
            age_secs: 301,
            tolerance_secs: 300
        }
    );
    assert!(err.to_string().contains("301 s behind now"), "{err}");
    let err = check(&v.header, signed_at - secs(400), five_min).unwrap_err();
    assert_eq!(
        err,
        MercadoPagoSignatureError::Stale {
            age_secs: -400,
            tolerance_secs: 300
        }
    );
    assert!(err.to_string().contains(" 400 s ahead of now"), "{err}");
    // No tolerance: any age.
    check(&v.header, signed_at + secs(86_400 * 365), None).unwrap();

    // ts in seconds.
    let header = sign(
        &v.secret,
        Some(&v.data_id),
        Some(&v.x_request_id),
        "1742505638",
    );
    let at = jiff::Timestamp::from_second(1_742_505_638).unwrap();
    check(&header, at + secs(299), five_min).unwrap();
    assert!(matches!(
        check(&header, at + secs(301), five_min),
        Err(MercadoPagoSignatureError::Stale { age_secs: 301, .. })
    ));

    // A forged signature is reported as a mismatch, not as stale.
    let forged = sign(
        "wrong",
        Some(&v.data_id),
        Some(&v.x_request_id),
        "1742505638",
    );
    assert_eq!(
        check(&forged, at + secs(10_000), five_min),
        Err(MercadoPagoSignatureError::Mismatch)
    );
    // A ts beyond u64 only matters when a tolerance is checked.
    let huge = sign(
        &v.secret,
        Some(&v.data_id),
        Some(&v.x_request_id),
        "99999999999999999999999",
    );
    check(&huge, at, None).unwrap();
    assert!(matches!(
        check(&huge, at, five_min),
        Err(MercadoPagoSignatureError::Malformed(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Notification
// ---------------------------------------------------------------------------------------------

/// The example body of providers.md §4.
const BODY: &str = r#"{"id":112233445566,"live_mode":true,"type":"payment","date_created":"2026-05-25T13:01:08.000-03:00","application_id":123,"user_id":987,"version":1,"api_version":"v1","action":"payment.updated","data":{"id":"1234567890"}}"#;

#[test]
fn notification_from_query_and_body() {
    let n = Notification::parse("data.id=1234567890&type=payment", BODY.as_bytes()).unwrap();
    assert_eq!(
        n,
        Notification {
            data_id: "1234567890".into(),
            kind: "payment".into(),
            action: Some("payment.updated".into()),
            id: Some("112233445566".into()),
        }
    );
    assert!(n.is_payment());
    assert_eq!(n.event_type(), "payment.updated");
    assert_eq!(
        n.event_id(Some("2066ca19-c6f1-498a-be75-1923005edd06")),
        "1234567890:2066ca19-c6f1-498a-be75-1923005edd06"
    );
    assert_eq!(n.event_id(None), "1234567890:112233445566");
    let bare = Notification { id: None, ..n };
    assert_eq!(bare.event_id(Some(" ")), "1234567890");

    // A leading `?`, percent-encoding, and an empty body.
    let n = Notification::parse("?type=payment&data%2Eid=%2012345%20", b"").unwrap();
    assert_eq!(
        (n.data_id.as_str(), &n.action, &n.id),
        ("12345", &None, &None)
    );
    assert_eq!(n.event_type(), "payment");
    // The body alone (no query): its data.id is used.
    let n = Notification::parse("", BODY.as_bytes()).unwrap();
    assert_eq!(n.data_id, "1234567890");
    // A numeric data.id in the body agrees with the query.
    let n = Notification::parse(
        "data.id=42&type=payment",
        br#"{"type":"payment","data":{"id":42}}"#,
    )
    .unwrap();
    assert_eq!(n.data_id, "42");
    // Legacy IPN.
    let n = Notification::parse("topic=payment&id=777", b"").unwrap();
    assert_eq!((n.kind.as_str(), n.data_id.as_str()), ("payment", "777"));
    assert_eq!(
        query_data_id("?data.id=99&type=payment").as_deref(),
        Some("99")
    );
    assert_eq!(query_data_id("type=payment&data.id="), None);
}

#[test]
fn notification_disagreements_are_refused() {
    let err = Notification::parse("data.id=999&type=payment", BODY.as_bytes()).unwrap_err();
    assert_eq!(
        err,
        NotificationError::DataIdMismatch {
            query: "999".into(),
            body: "1234567890".into()
        }
    );
    assert!(err.to_string().contains("not signed"), "{err}");
    let err = Notification::parse("data.id=1234567890&type=order", BODY.as_bytes()).unwrap_err();
    assert_eq!(
        err,
        NotificationError::TypeMismatch {
            query: "order".into(),
            body: "payment".into()
        }
    );
}

#[test]
fn non_payment_notifications_are_reported_as_such() {
    let n = Notification::parse(
        "data.id=ORD01JQ4S4KY8HWQ6NA5PXB65B3D3&type=order",
        br#"{"action":"order.processed","type":"order","data":{"id":"ORD01JQ4S4KY8HWQ6NA5PXB65B3D3"}}"#,
    )
    .unwrap();
    assert!(!n.is_payment());
    assert_eq!(n.kind, "order");
    let n = Notification::parse(
        "topic=merchant_order&id=3607377642",
        br#"{"resource":"https://api.mercadolibre.com/merchant_orders/3607377642","topic":"merchant_order"}"#,
    )
    .unwrap();
    assert!(!n.is_payment());
    assert_eq!(n.data_id, "3607377642");
    // No id at all is fine for a topic plazo ignores.
    let n = Notification::parse("type=topic_claims_integration_wh", b"{}").unwrap();
    assert_eq!((n.data_id.as_str(), n.is_payment()), ("", false));
}

#[test]
fn notification_errors() {
    assert_eq!(
        Notification::parse("type=payment", b"{}"),
        Err(NotificationError::MissingDataId)
    );
    assert_eq!(
        Notification::parse("data.id=1", br#"{"data":{"id":"1"}}"#),
        Err(NotificationError::MissingType)
    );
    assert!(matches!(
        Notification::parse("data.id=1&type=payment", b"not json"),
        Err(NotificationError::BadBody(_))
    ));
    assert!(matches!(
        Notification::parse("data.id=1&type=payment", b"[1]"),
        Err(NotificationError::BadBody(_))
    ));
    for bad in ["..%2F..%2Fusers%2Fme", "1%3Fx%3D1", &"9".repeat(65)] {
        assert!(
            matches!(
                Notification::parse(&format!("data.id={bad}&type=payment"), b""),
                Err(NotificationError::InvalidDataId(_))
            ),
            "{bad}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Payment parsing
// ---------------------------------------------------------------------------------------------

fn payment_json(amount: &str, refunded: &str) -> String {
    format!(
        r#"{{"id":1,"status":"approved","transaction_amount":{amount},"transaction_amount_refunded":{refunded},"currency_id":"ARS"}}"#
    )
}

#[test]
fn amounts_are_exact_decimals() {
    for (text, expected) in [
        ("1250.5", "1250.5"),
        ("100", "100"),
        ("1250.35", "1250.35"),
        ("0.3", "0.3"),
        ("58.80", "58.80"),
        ("0.0", "0.0"),
        // Beyond f64 (17 significant digits): exact only because the text is parsed.
        ("12345678901234567.89", "12345678901234567.89"),
        ("1.25e3", "1250"),
        ("\"1250.50\"", "1250.50"),
    ] {
        let p = MpPayment::from_json(payment_json(text, text).as_bytes())
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(p.transaction_amount.to_string(), expected, "{text}");
        assert_eq!(p.transaction_amount, dec(expected));
        assert_eq!(p.transaction_amount_refunded, Some(dec(expected)));
    }
    // 0.1 + 0.2 stays 0.3 in Decimal.
    let p = MpPayment::from_json(payment_json("0.1", "0.2").as_bytes()).unwrap();
    assert_eq!(
        p.transaction_amount + p.transaction_amount_refunded.unwrap(),
        dec("0.3")
    );
    let p = MpPayment::from_json(payment_json("1", "null").as_bytes()).unwrap();
    assert_eq!(p.transaction_amount_refunded, None);
    let p = MpPayment::from_json(
        br#"{"id":"1","status":"approved","transaction_amount":1,"currency_id":"ARS"}"#,
    )
    .unwrap();
    assert_eq!(p.transaction_amount_refunded, None);
    assert_eq!(p.metadata, serde_json::Value::Null);
    assert_eq!((p.external_reference, p.date_approved), (None, None));

    for bad in ["-5", "\"abc\"", "true", "null", "1e40"] {
        assert!(
            MpPayment::from_json(payment_json(bad, "0").as_bytes()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn timestamps_ids_and_round_trip() {
    let p = MpPayment::from_json(
        br#"{"id":1,"status":"approved","transaction_amount":1,"currency_id":"ARS",
            "date_approved":"2026-05-25T13:01:08.000-04:00","extra":{"x":[1,2]}}"#,
    )
    .unwrap();
    assert_eq!(p.date_approved, Some(ts("2026-05-25T17:01:08Z")));
    for bad in [r#""yesterday""#, "12", r#""2026-05-25""#] {
        let json = format!(
            r#"{{"id":1,"status":"approved","transaction_amount":1,"currency_id":"ARS","date_approved":{bad}}}"#
        );
        assert!(MpPayment::from_json(json.as_bytes()).is_err(), "{bad}");
    }
    let bad_id = br#"{"id":1.5,"status":"approved","transaction_amount":1,"currency_id":"ARS"}"#;
    assert!(MpPayment::from_json(bad_id).is_err());

    // What plazo may store reads back the same.
    let p = fixture_payment();
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(MpPayment::from_json(json.as_bytes()).unwrap(), p);
}

/// The SDK fixture, parsed.
fn fixture_payment() -> MpPayment {
    MpPayment::from_json(PAYMENT_FIXTURE.as_bytes()).unwrap()
}

/// Every field of the fixture, given the id it was served under.
fn assert_fixture_fields(p: &MpPayment, id: &str) {
    assert_eq!(p.id, id);
    assert_eq!(p.status, "approved");
    assert_eq!(p.status_detail.as_deref(), Some("accredited"));
    assert_eq!(p.transaction_amount, dec("58.80"));
    assert_eq!(p.transaction_amount.to_string(), "58.80");
    assert_eq!(p.transaction_amount_refunded, Some(dec("0.0")));
    assert_eq!(p.currency_id, "BRL");
    assert_eq!(p.external_reference.as_deref(), Some("MP0001"));
    assert_eq!(p.date_approved, Some(ts("2024-01-15T13:30:01Z")));
    assert_eq!(p.metadata, serde_json::json!({}));
}

#[test]
fn fixture_parses_offline() {
    assert_fixture_fields(&fixture_payment(), "17014025134");
}

// ---------------------------------------------------------------------------------------------
// Client, against a local server
// ---------------------------------------------------------------------------------------------

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    authorization: Option<String>,
    accept: Option<String>,
}

type SeenLog = Arc<Mutex<Vec<Seen>>>;

/// Answers by the last path segment, like Mercado Pago would for each case.
async fn handle(
    State(seen): State<SeenLog>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    seen.lock().unwrap().push(Seen {
        method,
        path: uri.path().to_owned(),
        authorization: h("authorization"),
        accept: h("accept"),
    });
    let rid = |r: &'static str| [("x-request-id", r), ("content-type", "application/json")];
    let err = |msg: &str, error: &str, status: u16| {
        serde_json::json!({
            "message": msg, "error": error, "status": status,
            "cause": [{"code": 2000, "description": msg}]
        })
        .to_string()
    };
    let Some(id) = uri.path().strip_prefix("/v1/payments/") else {
        return (AxStatus::IM_A_TEAPOT, "wrong path").into_response();
    };
    match id {
        "1234567890" => (
            AxStatus::OK,
            rid("req-ok"),
            // Served under the asked id; every other byte as in the fixture.
            PAYMENT_FIXTURE.replacen("\"id\": 17014025134", "\"id\": 1234567890", 1),
        )
            .into_response(),
        "17014025135" => (AxStatus::OK, rid("req-other"), PAYMENT_FIXTURE).into_response(),
        "404" => (
            AxStatus::NOT_FOUND,
            rid("req-404"),
            err("Payment not found", "not_found", 404),
        )
            .into_response(),
        "401" => (
            AxStatus::UNAUTHORIZED,
            rid("req-401"),
            err("invalid access token", "unauthorized", 401),
        )
            .into_response(),
        "403" => (
            AxStatus::FORBIDDEN,
            rid("req-403"),
            err(
                "at least one policy returned UNAUTHORIZED.",
                "forbidden",
                403,
            ),
        )
            .into_response(),
        "500" => (
            AxStatus::INTERNAL_SERVER_ERROR,
            rid("req-500"),
            err("internal_error", "internal_error", 500),
        )
            .into_response(),
        "429" => (
            AxStatus::TOO_MANY_REQUESTS,
            [("retry-after", "3"), ("x-request-id", "req-429")],
            "",
        )
            .into_response(),
        "400" => (
            AxStatus::BAD_REQUEST,
            rid("req-400"),
            err("Invalid payment_id", "bad_request", 400),
        )
            .into_response(),
        "302" => (AxStatus::FOUND, [("location", "/v1/payments/1234567890")]).into_response(),
        "garbage" => (AxStatus::OK, rid("req-garbage"), "<html>hello</html>").into_response(),
        _ => (AxStatus::IM_A_TEAPOT, "unexpected id").into_response(),
    }
}

/// Starts the server; returns its base URL and what it saw.
async fn server() -> (String, SeenLog) {
    let seen = SeenLog::default();
    let app = Router::new().fallback(handle).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

fn client(base: &str) -> MercadoPagoClient {
    MercadoPagoClient::with_base_url(base, TOKEN, Duration::from_secs(5)).unwrap()
}

#[tokio::test]
async fn client_fetches_payment_with_bearer_token() {
    let (base, seen) = server().await;
    // A trailing slash on base_url is ignored.
    let p = client(&format!("{base}/"))
        .payment("1234567890")
        .await
        .unwrap();
    assert_fixture_fields(&p, "1234567890");

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, Method::GET);
    assert_eq!(seen[0].path, "/v1/payments/1234567890");
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(seen[0].accept.as_deref(), Some("application/json"));
}

#[tokio::test]
async fn client_classifies_error_answers() {
    let (base, seen) = server().await;
    let c = client(&base);

    let err = c.payment("404").await.unwrap_err();
    assert!(matches!(err, FetchError::NotFound { .. }), "{err:?}");
    assert!(err.is_permanent());
    let text = err.to_string();
    assert!(text.contains("\"Payment not found\""), "{text}");
    assert!(text.contains("x-request-id req-404"), "{text}");
    assert_eq!(err.request_id(), Some("req-404"));

    for (id, rid) in [("401", "req-401"), ("403", "req-403")] {
        let err = c.payment(id).await.unwrap_err();
        assert!(
            matches!(&err, FetchError::Credentials { status, .. } if status.to_string() == id),
            "{err:?}"
        );
        assert!(err.is_permanent() && err.retry_after().is_none());
        let text = err.to_string();
        assert!(
            text.contains(rid) && text.contains("access token"),
            "{text}"
        );
    }
    let err = c.payment("401").await.unwrap_err();
    assert!(
        err.to_string().contains("\"invalid access token\""),
        "{err}"
    );

    let err = c.payment("500").await.unwrap_err();
    assert!(
        matches!(err, FetchError::Unavailable { status: 500, .. }),
        "{err:?}"
    );
    assert!(err.is_transient() && err.retry_after().is_none());
    assert!(err.to_string().contains("req-500"), "{err}");

    let err = c.payment("429").await.unwrap_err();
    assert!(
        matches!(err, FetchError::Unavailable { status: 429, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(err.request_id(), Some("req-429"));

    let err = c.payment("400").await.unwrap_err();
    assert!(
        matches!(err, FetchError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    assert!(err.is_permanent());
    assert!(err.to_string().contains("Invalid payment_id"), "{err}");

    let err = c.payment("302").await.unwrap_err();
    assert!(
        matches!(err, FetchError::Rejected { status: 302, .. }),
        "{err:?}"
    );

    let err = c.payment("garbage").await.unwrap_err();
    assert!(matches!(err, FetchError::Decode { .. }), "{err:?}");
    assert!(err.is_permanent());
    assert_eq!(err.request_id(), Some("req-garbage"));

    // The answer is another payment than asked for.
    let err = c.payment("17014025135").await.unwrap_err();
    assert!(
        matches!(&err, FetchError::Decode { detail, .. } if detail.contains("17014025134")),
        "{err:?}"
    );

    let n = seen.lock().unwrap().len();
    assert_eq!(n, 10, "one request each, the redirect not followed");
    for s in seen.lock().unwrap().iter() {
        assert_eq!(s.method, Method::GET);
    }
}

#[tokio::test]
async fn client_network_errors_are_transient() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = client(&format!("http://127.0.0.1:{port}"))
        .payment("1234567890")
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Network { .. }), "{err:?}");
    assert!(err.is_transient(), "{err}");
    assert!(!err.to_string().contains(TOKEN));

    // A server that accepts but never answers.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    let slow = MercadoPagoClient::with_base_url(
        &format!("http://{addr}"),
        TOKEN,
        Duration::from_millis(300),
    )
    .unwrap();
    let err = slow.payment("1234567890").await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn client_rejects_bad_ids_and_config_and_hides_the_token() {
    let (base, seen) = server().await;
    let c = client(&base);
    for bad in ["", "../users/me", "1?x=1", "1/2", "12 34"] {
        let err = c.payment(bad).await.unwrap_err();
        assert!(matches!(err, FetchError::InvalidId(_)), "{bad}: {err:?}");
        assert!(err.is_permanent());
    }
    assert!(seen.lock().unwrap().is_empty(), "no request for a bad id");

    let debug = format!("{c:?}");
    assert!(
        !debug.contains(TOKEN) && debug.contains("<redacted>"),
        "{debug}"
    );
    assert_eq!(c.base_url(), base);
    assert_eq!(
        MercadoPagoClient::new(TOKEN, DEFAULT_TIMEOUT)
            .unwrap()
            .base_url(),
        DEFAULT_BASE_URL
    );

    let t = Duration::from_secs(1);
    assert_eq!(
        MercadoPagoClient::with_base_url("api.mercadopago.com", TOKEN, t).unwrap_err(),
        ClientBuildError::BadBaseUrl("api.mercadopago.com".into())
    );
    assert!(matches!(
        MercadoPagoClient::with_base_url("ftp://example.com", TOKEN, t),
        Err(ClientBuildError::BadBaseUrl(_))
    ));
    assert_eq!(
        MercadoPagoClient::new(" \n", t).unwrap_err(),
        ClientBuildError::EmptyToken
    );
    let err = MercadoPagoClient::new("APP_USR-1\u{7f}2", t).unwrap_err();
    assert_eq!(err, ClientBuildError::BadToken);
    assert!(!err.to_string().contains("APP_USR"));
    assert_eq!(
        MercadoPagoClient::new(TOKEN, Duration::ZERO).unwrap_err(),
        ClientBuildError::ZeroTimeout
    );
}

// ---------------------------------------------------------------------------------------------
// to_event
// ---------------------------------------------------------------------------------------------

fn with_status(status: &str) -> MpPayment {
    MpPayment {
        status: status.to_owned(),
        ..fixture_payment()
    }
}

#[test]
fn to_event_approved_is_paid() {
    let e = to_event(&fixture_payment(), "17014025134:req-1", "payment.updated");
    assert_eq!(
        e,
        ProviderEvent {
            provider: "mercadopago".into(),
            event_id: "17014025134:req-1".into(),
            event_type: "payment.updated".into(),
            kind: ProviderEventKind::Paid,
            object_id: "17014025134".into(),
            amount: Some(dec("58.80")),
            currency: Some("BRL".into()),
            refs: InvoiceRefs {
                metadata: None,
                client_reference_id: None,
                external_reference: Some("MP0001".into()),
                number: None,
            },
            occurred_at: Some(ts("2024-01-15T13:30:01Z")),
            note: None,
            same_payment: Vec::new(),
        }
    );
}

#[test]
fn to_event_maps_every_status() {
    use ProviderEventKind::*;
    for (status, kind, amount) in [
        ("approved", Paid, Some("58.80")),
        ("refunded", Refunded, Some("58.80")),
        ("charged_back", Refunded, Some("58.80")),
        ("pending", Pending, None),
        ("authorized", Pending, None),
        ("in_process", Pending, None),
        ("in_mediation", Pending, None),
        ("rejected", Ignored, None),
        ("cancelled", Ignored, None),
        ("expired", Ignored, None),
    ] {
        let e = to_event(&with_status(status), "e", "payment.updated");
        assert_eq!(e.kind, kind, "{status}");
        assert_eq!(e.amount, amount.map(dec), "{status}");
        assert_eq!(e.object_id, "17014025134");
        assert_eq!(e.currency.as_deref(), Some("BRL"));
        assert_eq!(e.refs.external_reference.as_deref(), Some("MP0001"));
        match kind {
            Paid | Refunded => assert_eq!(e.note, None, "{status}"),
            Pending | Ignored => {
                let note = e.note.unwrap();
                assert!(note.contains(status), "{status}: {note}");
            }
        }
    }
    let e = to_event(&with_status("expired"), "e", "t");
    assert!(
        e.note
            .unwrap()
            .starts_with("unknown Mercado Pago payment status")
    );
    let e = to_event(&with_status("rejected"), "e", "t");
    assert_eq!(
        e.note.as_deref(),
        Some("payment was rejected (accredited): nothing to apply")
    );
}

#[test]
fn to_event_refund_amounts() {
    let p = MpPayment {
        transaction_amount_refunded: Some(dec("20.30")),
        ..with_status("refunded")
    };
    assert_eq!(to_event(&p, "e", "t").amount, Some(dec("20.30")));
    let p = MpPayment {
        transaction_amount_refunded: None,
        ..with_status("refunded")
    };
    assert_eq!(to_event(&p, "e", "t").amount, Some(dec("58.80")));
    let p = MpPayment {
        transaction_amount_refunded: Some(dec("20.30")),
        ..with_status("charged_back")
    };
    assert_eq!(to_event(&p, "e", "t").amount, Some(dec("58.80")));
    // A partial refund leaves the payment approved: paid in full, with a note.
    let p = MpPayment {
        transaction_amount_refunded: Some(dec("20.30")),
        status_detail: Some("partially_refunded".into()),
        ..with_status("approved")
    };
    let e = to_event(&p, "e", "t");
    assert_eq!(
        (e.kind, e.amount),
        (ProviderEventKind::Paid, Some(dec("58.80")))
    );
    assert!(e.note.unwrap().contains("20.30 refunded"));
}

#[test]
fn to_event_references_and_currency() {
    let p = MpPayment {
        metadata: serde_json::json!({"invoice_id": " INV-2026-001 ", "other": 1}),
        external_reference: Some("  ".into()),
        currency_id: "ars".into(),
        date_approved: None,
        ..fixture_payment()
    };
    let e = to_event(&p, "e", "t");
    assert_eq!(e.refs.metadata.as_deref(), Some("INV-2026-001"));
    assert_eq!(e.refs.external_reference, None);
    assert_eq!(e.currency.as_deref(), Some("ARS"));
    assert_eq!((e.occurred_at, e.note), (None, None));

    let p = MpPayment {
        metadata: serde_json::json!({"invoice_id": 42}),
        currency_id: "XBT".into(),
        ..fixture_payment()
    };
    let e = to_event(&p, "e", "t");
    assert_eq!(e.refs.metadata, None, "only a string is a reference");
    assert_eq!(e.currency.as_deref(), Some("XBT"));
    assert!(e.note.unwrap().contains("currency XBT"));

    // The event serialises with the amount as a string, exact.
    let json = serde_json::to_value(to_event(&fixture_payment(), "e", "t")).unwrap();
    assert_eq!(json["amount"], "58.80");
    assert_eq!(json["provider"], "mercadopago");
}
