//! The portfolio API (issue 13, item 1), in-process under a manual clock: invoices, clients
//! and planned reminders listed with filters and keyset pages, and JSON Merge Patch (RFC 7396)
//! on clients and invoices through the PUT path (validation, re-planning, no lost update under
//! concurrent patches).

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests may read the real clock

mod common;

use common::inproc::{InProcess, start_in_process};
use common::{step, test_policy};
use plazo::daemon::Running;
use serde_json::{Value, json};

const TOKEN: &str = "portfolio-test-token-81f3";
const NOW: &str = "2026-03-01T12:00:00Z";

fn policy() -> String {
    test_policy(
        "America/Bogota",
        "es",
        ("08:00", "19:00"),
        &["standard", "vip"],
        &[
            step("standard", "courtesy", "-3d", None, &["email"]),
            step("standard", "due_today", "0d", None, &["email"]),
            step("vip", "due_today", "0d", None, &["sms", "email"]),
        ],
    )
}

struct Api {
    _running: Running,
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn start() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let (running, _clock) = start_in_process(
            dir.path(),
            InProcess {
                policy: &policy(),
                token: TOKEN,
                top: "",
                tables: "",
                now: NOW,
                channels: "",
            },
        )
        .await;
        Api {
            base: format!("http://{}", running.addr),
            _running: running,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn send(&self, method: &str, path: &str, ct: &str, body: Option<Value>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(m, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.header("content-type", ct).body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (st, v) = self.send(method, path, "application/json", body).await;
        assert!((200..300).contains(&st), "{method} {path}: {st} {v}");
        v
    }

    async fn get(&self, path: &str) -> Value {
        self.ok("GET", path, None).await
    }

    async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.send("PATCH", path, "application/merge-patch+json", Some(body))
            .await
    }

    /// Every id of a listing walked in pages of `limit` (`key`: the array's name).
    async fn walk(&self, path: &str, key: &str, limit: usize) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        let sep = if path.contains('?') { '&' } else { '?' };
        for _ in 0..100 {
            let mut url = format!("{path}{sep}limit={limit}");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page = self.get(&url).await;
            let items = page[key].as_array().unwrap();
            assert!(items.len() <= limit, "{page}");
            ids.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return ids,
            }
        }
        panic!("the walk of {path} never ended");
    }

    async fn ids(&self, path: &str, key: &str) -> Vec<String> {
        self.walk(path, key, 1000).await
    }
}

/// c-1 standard (COP and MXN, two overdue), c-2 vip by tag, c-3 vip preferring email, c-4
/// with no invoice; P1 of c-2 is paid in full.
async fn portfolio(api: &Api) {
    let client = |name: &str, extra: Value| {
        let mut b = json!({"name": name, "email": "x@cliente.example.co", "phone": "+573001234567",
                           "timezone": "America/Bogota", "country": "CO"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    api.ok("PUT", "/v1/clients/c-1", Some(client("Uno", json!({}))))
        .await;
    api.ok(
        "PUT",
        "/v1/clients/c-2",
        Some(client("Dos", json!({"tags": ["vip"]}))),
    )
    .await;
    api.ok(
        "PUT",
        "/v1/clients/c-3",
        Some(client(
            "Tres",
            json!({"tags": ["vip"], "preferred_channels": ["email"]}),
        )),
    )
    .await;
    api.ok("PUT", "/v1/clients/c-4", Some(client("Cuatro", json!({}))))
        .await;
    let inv = |c: &str, cur: &str, amount: &str, due: &str| json!({"client_id": c, "number": "FV", "currency": cur, "amount": amount, "due_at": due});
    for (id, body) in [
        ("A1", inv("c-1", "COP", "100000", "2026-03-10")),
        ("A2", inv("c-1", "COP", "50000", "2026-02-01")),
        ("A3", inv("c-1", "MXN", "2000", "2026-01-01")),
        ("B1", inv("c-2", "COP", "70000", "2026-03-02")),
        ("C1", inv("c-3", "COP", "80000", "2026-03-02")),
        ("P1", inv("c-2", "COP", "10000", "2026-02-15")),
    ] {
        api.ok("PUT", &format!("/v1/invoices/{id}"), Some(body))
            .await;
    }
    api.ok(
        "POST",
        "/v1/invoices/P1/payments",
        Some(json!({"amount": "10000", "currency": "COP", "reference": "pay-P1"})),
    )
    .await;
}

#[tokio::test]
async fn invoices_are_listed_with_filters_in_stable_pages() {
    let api = Api::start().await;
    portfolio(&api).await;
    let all = ["A1", "A2", "A3", "B1", "C1", "P1"];
    assert_eq!(api.ids("/v1/invoices", "invoices").await, all);
    for limit in 1..=4 {
        assert_eq!(
            api.walk("/v1/invoices", "invoices", limit).await,
            all,
            "pages of {limit}"
        );
    }
    assert_eq!(
        api.ids("/v1/invoices?status=paid", "invoices").await,
        ["P1"]
    );
    assert_eq!(
        api.ids("/v1/invoices?status=open", "invoices").await,
        ["A1", "A2", "A3", "B1", "C1"]
    );
    assert_eq!(
        api.walk("/v1/invoices?client_id=c-1", "invoices", 1).await,
        ["A1", "A2", "A3"]
    );
    assert_eq!(
        api.ids("/v1/invoices?currency=mxn", "invoices").await,
        ["A3"]
    );
    // 2026-03-01 in Bogotá: A2 is 28 days past due, A3 59.
    assert_eq!(
        api.ids("/v1/invoices?overdue_min_days=30", "invoices")
            .await,
        ["A3"]
    );
    assert_eq!(
        api.walk("/v1/invoices?overdue_min_days=1", "invoices", 1)
            .await,
        ["A2", "A3"]
    );
    assert_eq!(
        api.ids("/v1/invoices?due_before=2026-03-02", "invoices")
            .await,
        ["A2", "A3", "P1"]
    );
    assert_eq!(
        api.ids("/v1/invoices?segment=vip&status=open", "invoices")
            .await,
        ["B1", "C1"]
    );
    let page = api.get("/v1/invoices?client_id=c-1&limit=2").await;
    let a2 = &page["invoices"][1];
    assert_eq!(a2["id"], "A2");
    assert_eq!(a2["days_overdue"], 28);
    assert_eq!(a2["balance"], "50000.00");
    assert_eq!(a2["segment"], "standard");
    assert!(page["next_cursor"].is_string());
    let a1 = &page["invoices"][0];
    // courtesy: 3 days before 2026-03-10, 09:00 in Bogotá.
    assert_eq!(a1["next_reminder_at"], "2026-03-07T14:00:00Z");
    assert_eq!(a1["days_overdue"], 0);

    // Bad queries: what is wrong and how to fix it; nothing else.
    for (q, field) in [
        ("status=late", "status"),
        ("overdue_min_days=-1", "overdue_min_days"),
        ("due_before=yesterday", "due_before"),
        ("currency=XXQ", "currency"),
        ("limit=0", "limit"),
        ("cursor=zz", "cursor"),
    ] {
        let (st, v) = api
            .send("GET", &format!("/v1/invoices?{q}"), "", None)
            .await;
        assert_eq!(st, 422, "{q}: {v}");
        assert!(v.to_string().contains(field), "{q}: {v}");
    }
    let clients_cursor = api.get("/v1/clients?limit=1").await["next_cursor"].clone();
    let (st, v) = api
        .send(
            "GET",
            &format!("/v1/invoices?cursor={}", clients_cursor.as_str().unwrap()),
            "",
            None,
        )
        .await;
    assert_eq!(st, 422, "a cursor of another listing: {v}");
    let (st, v) = api.send("GET", "/v1/invoices?stauts=open", "", None).await;
    assert_eq!(st, 400, "an unknown parameter: {v}");
    assert!(v.to_string().contains("stauts"), "{v}");
}

#[tokio::test]
async fn clients_are_listed_with_balances_per_currency() {
    let api = Api::start().await;
    portfolio(&api).await;
    assert_eq!(
        api.walk("/v1/clients", "clients", 1).await,
        ["c-1", "c-2", "c-3", "c-4"]
    );
    let page = api.get("/v1/clients?limit=1").await;
    let c1 = &page["clients"][0];
    assert_eq!(c1["open_invoices"], 3);
    assert_eq!(c1["balance"], json!({"COP": "150000.00", "MXN": "2000.00"}));
    assert_eq!(c1["segment"], "standard");
    assert_eq!(
        api.ids("/v1/clients?segment=vip", "clients").await,
        ["c-2", "c-3"]
    );
    assert_eq!(
        api.ids("/v1/clients?tag=vip", "clients").await,
        ["c-2", "c-3"]
    );
    let c2 = &api.get("/v1/clients?tag=vip&limit=1").await["clients"][0];
    // P1 is paid: only B1 is owed.
    assert_eq!(c2["balance"], json!({"COP": "70000.00"}));
    assert_eq!(c2["open_invoices"], 1);
    // GET /v1/clients/{id}: open invoices and balance per currency.
    let one = api.get("/v1/clients/c-1").await;
    assert_eq!(one["open_invoices"].as_array().unwrap().len(), 3);
    assert_eq!(one["facts"]["open_balance"]["MXN"], "2000.00", "{one}");
}

#[tokio::test]
async fn reminders_lists_what_goes_out_with_each_clients_first_channel() {
    let api = Api::start().await;
    portfolio(&api).await;
    let window = "from=2026-03-02T00:00:00Z&to=2026-03-03T00:00:00Z";
    let page = api.get(&format!("/v1/reminders?{window}")).await;
    let items = page["reminders"].as_array().unwrap();
    let invoices: Vec<&str> = items
        .iter()
        .map(|r| r["invoice_id"].as_str().unwrap())
        .collect();
    assert!(
        invoices.contains(&"B1") && invoices.contains(&"C1"),
        "{page}"
    );
    assert!(
        !invoices.contains(&"A1"),
        "A1's courtesy is on 03-07: {page}"
    );
    let times: Vec<&str> = items
        .iter()
        .map(|r| r["fire_at"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "firing order: {times:?}"
    );
    let b1 = items.iter().find(|r| r["invoice_id"] == "B1").unwrap();
    assert_eq!(b1["fire_at"], "2026-03-02T14:00:00Z");
    assert!(
        b1["local_time"]
            .as_str()
            .unwrap()
            .starts_with("2026-03-02T09:00:00-05:00"),
        "{b1}"
    );
    assert_eq!(b1["channels"], json!(["sms", "email"]));
    assert_eq!(b1["step"], "due_today");
    // c-3 prefers email: its vip reminder tries email first.
    let sms = api
        .get(&format!("/v1/reminders?{window}&channel=sms"))
        .await;
    let sms: Vec<&str> = sms["reminders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["invoice_id"].as_str().unwrap())
        .collect();
    assert_eq!(sms, ["B1"]);
    let email = api
        .get(&format!("/v1/reminders?{window}&channel=email"))
        .await;
    assert!(email.to_string().contains("\"C1\""), "{email}");
    assert!(!email.to_string().contains("\"B1\""), "{email}");
    // Pages of one walk the same list.
    let walked = api
        .walk(&format!("/v1/reminders?{window}"), "reminders", 1)
        .await;
    let whole: Vec<String> = items
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(walked, whole);
    // Default range: the next 24 hours from now (2026-03-01T12:00Z) holds B1 and C1.
    let next = api.get("/v1/reminders").await;
    assert_eq!(next["reminders"].as_array().unwrap().len(), items.len());
    let (st, v) = api
        .send(
            "GET",
            "/v1/reminders?from=2026-03-03T00:00:00Z&to=2026-03-02T00:00:00Z",
            "",
            None,
        )
        .await;
    assert_eq!(st, 422, "{v}");
}

#[tokio::test]
async fn merge_patch_changes_only_what_it_names_through_the_put_path() {
    let api = Api::start().await;
    portfolio(&api).await;
    // A tag moves c-1 to vip: the pending reminder of A1 is re-planned on vip's cadence.
    let (st, c) = api
        .patch("/v1/clients/c-1", json!({"tags": ["vip"], "email": null}))
        .await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["name"], "Uno");
    assert_eq!(c["tags"], json!(["vip"]));
    assert!(c.get("email").is_none(), "null removes: {c}");
    assert_eq!(c["phone"], "+573001234567");
    let a1 = api.get("/v1/invoices/A1").await;
    assert_eq!(a1["next_reminder"]["cadence"], "vip", "{a1}");

    // Refused, and nothing changes: a required field removed, an unknown field, a bad phone,
    // another media type, an unknown client.
    for (patch, code) in [
        (json!({"name": null}), 422),
        (json!({"nmae": "x"}), 422),
        (json!({"phone": "12"}), 422),
        (json!(["name"]), 422),
    ] {
        let (st, v) = api.patch("/v1/clients/c-1", patch.clone()).await;
        assert_eq!(st, code, "{patch}: {v}");
    }
    let (st, v) = api
        .send(
            "PATCH",
            "/v1/clients/c-1",
            "text/plain",
            Some(json!({"name": "X"})),
        )
        .await;
    assert_eq!(st, 415, "{v}");
    assert!(v.to_string().contains("merge-patch"), "{v}");
    let (st, _) = api.patch("/v1/clients/nobody", json!({"name": "X"})).await;
    assert_eq!(st, 404);
    assert_eq!(api.get("/v1/clients/c-1").await["name"], "Uno");

    // Invoices: amount, metadata merged key by key, the same patch twice is unchanged, a new
    // due date re-plans.
    let (st, v) = api
        .patch(
            "/v1/invoices/A1",
            json!({"amount": "120000", "metadata": {"po": "77", "cc": "1"}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["result"], "updated");
    assert_eq!(v["invoice"]["balance"], "120000");
    let (_, v) = api
        .patch("/v1/invoices/A1", json!({"metadata": {"po": null}}))
        .await;
    assert_eq!(v["invoice"]["metadata"], json!({"cc": "1"}));
    let (_, v) = api
        .patch("/v1/invoices/A1", json!({"metadata": {"po": null}}))
        .await;
    assert_eq!(v["result"], "unchanged");
    let (_, v) = api
        .patch("/v1/invoices/A1", json!({"due_at": "2026-03-20"}))
        .await;
    assert_eq!(v["result"], "updated");
    // vip has one step, on the due date at 09:00 Bogotá.
    assert_eq!(v["next_reminder_at"], "2026-03-20T14:00:00Z");
    let (st, v) = api
        .patch("/v1/invoices/A1", json!({"client_id": "c-2"}))
        .await;
    assert_eq!(st, 409, "an invoice cannot move: {v}");
    let (st, v) = api
        .patch("/v1/invoices/A1", json!({"currency": "ZZZ"}))
        .await;
    assert_eq!(st, 422, "{v}");
    assert_eq!(
        api.get("/v1/invoices/A1").await["invoice"]["currency"],
        "COP"
    );
}

#[tokio::test]
async fn concurrent_patches_never_lose_an_update() {
    let api = std::sync::Arc::new(Api::start().await);
    portfolio(&api).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let (st, v) = api
                .patch(
                    "/v1/invoices/A2",
                    json!({"metadata": {format!("k{i:02}"): format!("v{i}")}}),
                )
                .await;
            assert_eq!(st, 200, "{v}");
            let (st, v) = api
                .patch("/v1/clients/c-4", json!({"tags": [format!("t{i}")]}))
                .await;
            assert_eq!(st, 200, "{v}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let meta = api.get("/v1/invoices/A2").await["invoice"]["metadata"].clone();
    assert_eq!(meta.as_object().unwrap().len(), 16, "{meta}");
    for i in 0..16 {
        assert_eq!(meta[format!("k{i:02}")], format!("v{i}"));
    }
}
