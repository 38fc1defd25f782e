//! The bulk import (`POST /v1/import/{clients,invoices}`, `plazo import`): CSV and NDJSON
//! against a real daemon (in-process under a manual clock, or the binary for SIGKILL and the
//! CLI), row results and line numbers, idempotence, and durability of acknowledged rows.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::inproc::{InProcess, start_in_process};
use common::{Daemon, free_port, repo, step, test_policy, write};
use plazo::daemon::Running;
use serde_json::{Value, json};

const TOKEN: &str = "import-test-token-77c1";
const NOW: &str = "2026-11-20T12:00:00Z";

fn policy() -> String {
    test_policy(
        "America/Bogota",
        "es",
        ("08:00", "19:00"),
        &["standard"],
        &[
            step("standard", "courtesy", "-3d", None, &["email"]),
            step("standard", "due_today", "0d", None, &["email"]),
            step("standard", "firm_overdue", "+10d", None, &["email"]),
        ],
    )
}

struct Api {
    running: Option<Running>,
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start() -> Api {
    start_with("").await
}

async fn start_with(tables: &str) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let (running, _clock) = start_in_process(
        dir.path(),
        InProcess {
            policy: &policy(),
            token: TOKEN,
            top: "",
            tables,
            now: NOW,
            channels: "",
        },
    )
    .await;
    Api {
        base: format!("http://{}", running.addr),
        running: Some(running),
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

/// An import's answer: the status and its NDJSON lines (or the error envelope).
struct Answer {
    status: u16,
    rows: Vec<Value>,
    summary: Value,
    body: Value,
}

impl Answer {
    fn row(&self, line: u64) -> &Value {
        self.rows
            .iter()
            .find(|r| r["line"] == line)
            .unwrap_or_else(|| panic!("no result for line {line}: {:?}", self.rows))
    }
    fn results(&self) -> Vec<(u64, String)> {
        self.rows
            .iter()
            .map(|r| {
                (
                    r["line"].as_u64().unwrap(),
                    r["result"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

fn parse_answer(status: u16, text: &str) -> Answer {
    if status != 200 {
        return Answer {
            status,
            rows: vec![],
            summary: Value::Null,
            body: serde_json::from_str(text).unwrap_or(Value::String(text.to_owned())),
        };
    }
    let mut rows = Vec::new();
    let mut summary = Value::Null;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if v.get("summary").is_some() {
            summary = v["summary"].clone();
        } else {
            rows.push(v);
        }
    }
    Answer {
        status,
        rows,
        summary,
        body: Value::Null,
    }
}

impl Api {
    async fn import(&self, kind: &str, ctype: &str, body: &str) -> Answer {
        let resp = self
            .http
            .post(format!("{}/v1/import/{kind}", self.base))
            .bearer_auth(TOKEN)
            .header("content-type", ctype)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        if status == 200 {
            assert_eq!(
                resp.headers()["content-type"].to_str().unwrap(),
                "application/x-ndjson"
            );
        }
        parse_answer(status, &resp.text().await.unwrap())
    }
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
    async fn stop(mut self) {
        self.running.take().unwrap().shutdown().await.unwrap();
    }
}

fn example(name: &str) -> String {
    std::fs::read_to_string(repo().join("config/examples").join(name)).unwrap()
}

fn counts(summary: &Value) -> [u64; 5] {
    ["rows", "created", "updated", "unchanged", "errors"].map(|k| summary[k].as_u64().unwrap())
}

/// What a GET shows of an invoice's plan, without its id-derived parts.
fn plan_of(view: &Value) -> Value {
    let r = &view["next_reminder"];
    json!({
        "step": r["step_name"], "fire_at": r["fire_at"], "cadence": r["cadence"],
        "status": view["invoice"]["status"], "balance": view["invoice"]["balance"],
        "due_at": view["invoice"]["due_at"], "timeline": view["timeline"].as_array().unwrap().len(),
    })
}

#[tokio::test]
async fn csv_then_ndjson_import_plans_like_put_and_is_idempotent() {
    let api = start().await;
    let clients = example("clients.csv");
    let invoices = example("invoices.csv");
    let a = api.import("clients", "text/csv", &clients).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(counts(&a.summary), [6, 6, 0, 0, 0], "{:?}", a.rows);
    // Lines count the header as line 1.
    assert_eq!(a.row(2)["id"], "cli-1");
    assert_eq!(a.row(7)["id"], "cli-6");
    let (st, c2) = api.call("GET", "/v1/clients/cli-2", None).await;
    assert_eq!(st, 200, "{c2}");
    assert_eq!(c2["preferred_channels"], json!(["whatsapp", "email"]));
    assert_eq!(c2["blocked_times"][0]["days"], "mon-fri");
    let (_, c3) = api.call("GET", "/v1/clients/cli-3", None).await;
    assert_eq!(c3["name"], "Ferretería López, S.A. de C.V.");
    assert_eq!(c3["tags"], json!(["retail", "puntual"]));

    let a = api
        .import("invoices", "text/csv; charset=utf-8", &invoices)
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(counts(&a.summary), [6, 6, 0, 0, 0], "{:?}", a.rows);

    // The same invoice through PUT on another id is planned the same way.
    let (st, v) = api
        .call(
            "PUT",
            "/v1/invoices/put-1001",
            Some(
                json!({"client_id": "cli-1", "number": "FV-1001", "currency": "COP",
                "amount": "1250000", "issued_at": "2026-11-01", "due_at": "2026-12-01",
                "payment_url": "https://pagos.example.co/FV-1001",
                "metadata": {"order_ref": "PED-5531", "sales_rep": "Laura"}}),
            ),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let (_, imported) = api.call("GET", "/v1/invoices/inv-1001", None).await;
    let (_, put) = api.call("GET", "/v1/invoices/put-1001", None).await;
    assert!(
        imported["next_reminder"]["fire_at"].is_string(),
        "{imported}"
    );
    assert_eq!(plan_of(&imported), plan_of(&put));
    assert_eq!(imported["invoice"]["metadata"], put["invoice"]["metadata"]);
    // An empty meta cell leaves the key out.
    let (_, i2001) = api.call("GET", "/v1/invoices/inv-2001", None).await;
    assert_eq!(i2001["invoice"]["metadata"], json!({"sales_rep": "Rocío"}));

    // Again: nothing changes.
    let a = api.import("clients", "text/csv", &clients).await;
    assert_eq!(counts(&a.summary), [6, 0, 0, 6, 0], "{:?}", a.rows);
    let a = api.import("invoices", "text/csv", &invoices).await;
    assert_eq!(counts(&a.summary), [6, 0, 0, 6, 0], "{:?}", a.rows);
    let (_, again) = api.call("GET", "/v1/invoices/inv-1001", None).await;
    assert_eq!(
        again["invoice"]["updated_at"],
        imported["invoice"]["updated_at"]
    );
    assert_eq!(again["timeline"], imported["timeline"]);

    // One changed row is updated, and re-planned like a PUT of the change.
    let changed = invoices.replace(
        "2026-12-01,https://pagos.example.co/FV-1001",
        "2026-12-09,https://pagos.example.co/FV-1001",
    );
    assert_ne!(changed, invoices);
    let a = api.import("invoices", "text/csv", &changed).await;
    assert_eq!(counts(&a.summary), [6, 0, 1, 5, 0], "{:?}", a.rows);
    assert_eq!(a.row(2)["result"], "updated");
    let (st, _) = api
        .call(
            "PUT",
            "/v1/invoices/put-1001",
            Some(
                json!({"client_id": "cli-1", "number": "FV-1001", "currency": "COP",
                "amount": "1250000", "issued_at": "2026-11-01", "due_at": "2026-12-09",
                "payment_url": "https://pagos.example.co/FV-1001",
                "metadata": {"order_ref": "PED-5531", "sales_rep": "Laura"}}),
            ),
        )
        .await;
    assert_eq!(st, 200);
    let (_, imported) = api.call("GET", "/v1/invoices/inv-1001", None).await;
    let (_, put) = api.call("GET", "/v1/invoices/put-1001", None).await;
    assert_eq!(imported["invoice"]["due_at"], "2026-12-09");
    assert_eq!(plan_of(&imported), plan_of(&put));

    // NDJSON: the PUT bodies plus "id".
    let nd_clients = [
        json!({"id": "nd-1", "name": "Lucía Gómez", "email": "lucia@example.co", "country": "CO",
               "phone": "3001234567", "timezone": "America/Bogota", "tags": ["retail"]}),
        json!({"id": "nd-2", "name": "Grupo Sierra", "email": "cxc@sierra.example.mx",
               "country": "MX", "timezone": "America/Mexico_City",
               "blocked_times": [{"days": "sat", "from": "09:00", "to": "12:00"}]}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    // With a byte order mark, as some editors save UTF-8.
    let a = api
        .import(
            "clients",
            "application/x-ndjson",
            &format!("\u{feff}{nd_clients}"),
        )
        .await;
    assert_eq!(counts(&a.summary), [2, 2, 0, 0, 0], "{:?}", a.rows);
    let (_, nd1) = api.call("GET", "/v1/clients/nd-1", None).await;
    assert_eq!(nd1["phone"], "+573001234567");
    let nd_invoices = format!(
        "{}\n\n{}\n",
        json!({"id": "nd-inv-1", "client_id": "nd-1", "number": "FV-77", "currency": "COP",
               "amount": "500000", "due_at": "2026-12-03"}),
        json!({"id": "nd-inv-2", "client_id": "nd-2", "number": "B-12", "currency": "MXN",
               "amount": "1200.50", "due_at": "2026-12-04", "metadata": {"po": "7"}}),
    );
    let a = api
        .import("invoices", "application/x-ndjson", &nd_invoices)
        .await;
    assert_eq!(counts(&a.summary), [2, 2, 0, 0, 0], "{:?}", a.rows);
    // The blank line 2 is skipped but counted.
    assert_eq!(
        a.results(),
        vec![(1, "created".into()), (3, "created".into())]
    );
    let (_, v) = api.call("GET", "/v1/invoices/nd-inv-2", None).await;
    assert_eq!(v["invoice"]["metadata"], json!({"po": "7"}));
    assert!(v["next_reminder"]["fire_at"].is_string(), "{v}");
    let a = api
        .import("invoices", "application/x-ndjson", &nd_invoices)
        .await;
    assert_eq!(counts(&a.summary), [2, 0, 0, 2, 0], "{:?}", a.rows);
    api.stop().await;
}

#[tokio::test]
async fn malformed_rows_are_reported_on_their_line_and_good_rows_applied() {
    let api = start().await;
    let clients = "id,name,email,timezone,country\n\
        c1,Ana Ruiz,ana@example.co,America/Bogota,CO\n\
        c2,\"Ana,ana@example.co,America/Bogota,CO\n\
        c3,Beto Díaz,beto@example.mx,America/Mexico_City,MX\n\
        c1,Ana Otra,otra@example.co,America/Bogota,CO\n\
        \n\
        c4,Carla,carla@example.es,Europe/Nowhere,ES\n\
        c5,Dani \"El\" Pi,dani@example.es,Europe/Madrid,ES\n";
    let a = api.import("clients", "text/csv", clients).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.results(),
        vec![
            (2, "created".into()),
            (3, "error".into()),
            (4, "created".into()),
            (5, "error".into()),
            (7, "error".into()),
            (8, "error".into()),
        ]
    );
    assert!(
        a.row(3)["message"].as_str().unwrap().contains("quot"),
        "{:?}",
        a.row(3)
    );
    let dup = a.row(5)["message"].as_str().unwrap();
    assert!(dup.contains("line 2"), "{dup}");
    assert_eq!(a.row(5)["id"], "c1");
    assert!(a.row(7)["message"].as_str().unwrap().contains("timezone"));
    assert!(a.row(8)["message"].as_str().unwrap().contains("quot"));
    assert_eq!(counts(&a.summary), [6, 2, 0, 0, 4]);
    let (_, c1) = api.call("GET", "/v1/clients/c1", None).await;
    assert_eq!(c1["name"], "Ana Ruiz", "the duplicate row must not apply");
    assert_eq!(api.call("GET", "/v1/clients/c4", None).await.0, 404);

    let long = "x".repeat(70 * 1024);
    let invoices = format!(
        "id,client_id,number,currency,amount,due_at,meta.note\n\
        i1,c1,F-1,COP,100000,2026-12-10,\n\
        i2,c1,F-2,COP,100000,2026-13-45,\n\
        i3,ghost,F-3,COP,100000,2026-12-10,\n\
        i4,c3,F-4,MXN,12.345,2026-12-10,\n\
        i5,c3,F-5,MXN,99.90,2026-12-10,{long}\n\
        i6,c3,F-6,MXN,99.90,2026-12-10,ok\n"
    );
    let a = api.import("invoices", "text/csv", &invoices).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.results(),
        vec![
            (2, "created".into()),
            (3, "error".into()),
            (4, "error".into()),
            (5, "error".into()),
            (6, "error".into()),
            (7, "created".into()),
        ]
    );
    assert!(a.row(3)["message"].as_str().unwrap().contains("due_at"));
    let ghost = a.row(4)["message"].as_str().unwrap();
    assert!(
        ghost.contains("ghost") && ghost.contains("not found"),
        "{ghost}"
    );
    assert!(a.row(5)["message"].as_str().unwrap().contains("amount"));
    assert!(
        a.row(6)["message"]
            .as_str()
            .unwrap()
            .contains("longer than")
    );
    for (id, status) in [
        ("i1", 200),
        ("i2", 404),
        ("i3", 404),
        ("i4", 404),
        ("i5", 404),
        ("i6", 200),
    ] {
        assert_eq!(
            api.call("GET", &format!("/v1/invoices/{id}"), None).await.0,
            status,
            "{id}"
        );
    }

    // Header problems: 422 before any row is applied.
    let a = api
        .import("clients", "text/csv", "id,name,fax\nz1,Zoe,123\n")
        .await;
    assert_eq!(a.status, 422);
    let m = a.body["error"]["message"].as_str().unwrap();
    assert!(m.contains("\"fax\"") && m.contains("timezone"), "{m}");
    let a = api
        .import(
            "invoices",
            "text/csv",
            "id,client_id,number,currency,due_at\nz2,c1,F-9,COP,2026-12-01\n",
        )
        .await;
    assert_eq!(a.status, 422);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"amount\"")
    );
    assert_eq!(api.call("GET", "/v1/clients/z1", None).await.0, 404);
    assert_eq!(api.call("GET", "/v1/invoices/z2", None).await.0, 404);

    // Another content type: 415 naming both supported ones.
    let a = api.import("clients", "application/json", "{}").await;
    assert_eq!(a.status, 415);
    let m = a.body["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("application/x-ndjson") && m.contains("text/csv"),
        "{m}"
    );

    // NDJSON: a bad line, an unknown field and a missing id are errors of their line.
    let nd = "{\"id\":\"n1\",\"name\":\"Nora\"}\n{not json\n{\"id\":\"n2\",\"name\":\"N\",\"fax\":\"1\"}\n{\"name\":\"No id\"}\n";
    let a = api.import("clients", "application/x-ndjson", nd).await;
    assert_eq!(
        a.results(),
        vec![
            (1, "created".into()),
            (2, "error".into()),
            (3, "error".into()),
            (4, "error".into()),
        ]
    );
    assert!(a.row(3)["message"].as_str().unwrap().contains("fax"));
    assert!(a.row(4)["message"].as_str().unwrap().contains("id"));
    // Without the token: 401.
    let resp = api
        .http
        .post(format!("{}/v1/import/clients", api.base))
        .header("content-type", "text/csv")
        .body("id,name\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    api.stop().await;
}

#[tokio::test]
async fn an_upload_that_stops_sending_is_cut_and_its_rows_so_far_kept() {
    let api = start_with("[http]\nbody_timeout_ms = 300\nimport_body_limit_bytes = 4096\n").await;
    // An upload announced larger than the import limit: 413 before a byte is read.
    let big: String = std::iter::once("id,name\n".to_owned())
        .chain((0..400).map(|i| format!("b{i},Nombre {i}\n")))
        .collect();
    let a = api.import("clients", "text/csv", &big).await;
    assert_eq!(a.status, 413, "{}", a.body);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("4096")
    );
    assert_eq!(api.call("GET", "/v1/clients/b1", None).await.0, 404);
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(1);
    tx.send("id,name\nq1,Quique\nq2,Quela\n".to_owned())
        .await
        .unwrap();
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|p| (Ok::<_, std::io::Error>(p), rx))
    });
    let started = Instant::now();
    let resp = api
        .http
        .post(format!("{}/v1/import/clients", api.base))
        .bearer_auth(TOKEN)
        .header("content-type", "text/csv")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // The sender stays open but sends nothing more.
    let text = tokio::time::timeout(Duration::from_secs(10), resp.text())
        .await
        .expect("the daemon must cut an idle upload")
        .unwrap_or_default();
    drop(tx);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(
        (lines[0]["line"].as_u64(), lines[0]["result"].as_str()),
        (Some(2), Some("created"))
    );
    assert_eq!(
        (lines[1]["line"].as_u64(), lines[1]["result"].as_str()),
        (Some(3), Some("created"))
    );
    assert_eq!(lines[2]["error"]["code"], "upload_failed", "{text}");
    assert!(
        lines[2]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("300 ms"),
        "{text}"
    );
    assert_eq!(counts(&lines[3]["summary"]), [2, 2, 0, 0, 0]);
    assert_eq!(api.call("GET", "/v1/clients/q2", None).await.0, 200);
    api.stop().await;
}

/// A daemon binary on its own port and data dir, every channel to the outbox.
fn start_binary(dir: &std::path::Path, port: u16) -> Daemon {
    write(&dir.join("policy.toml"), &policy());
    let config = format!(
        r#"
listen = "127.0.0.1:{port}"
data_dir = "data"
policy = "policy.toml"
[routes]
email = "outbox"
[channels.outbox]
type = "outbox"
dir = "outbox"
"#
    );
    Daemon::start(dir, &config, port)
}

fn generated_invoices(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "{{\"id\":\"k-{i}\",\"client_id\":\"kc-{}\",\"number\":\"K-{i}\",\"currency\":\"COP\",\"amount\":\"{}.00\",\"due_at\":\"2027-0{}-1{}\"}}\n",
                i % 50,
                1000 + i,
                1 + i % 9,
                i % 10
            )
        })
        .collect()
}

#[test]
fn sigkill_mid_import_keeps_every_acknowledged_row() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let d = start_binary(dir.path(), port);
    let clients: String = (0..50)
        .map(|i| format!("{{\"id\":\"kc-{i}\",\"name\":\"Cliente {i}\"}}\n"))
        .collect();
    let http = reqwest::Client::new();
    let base = d.base.clone();
    let url = |kind: &str| format!("{base}/v1/import/{kind}");
    common::reqwest::block_on(async {
        let r = http
            .post(url("clients"))
            .bearer_auth(common::TOKEN)
            .header("content-type", "application/x-ndjson")
            .body(clients.clone())
            .send()
            .await
            .unwrap();
        assert!(r.text().await.unwrap().contains("\"created\":50"));
    });
    const N: usize = 20_000;
    let rows = generated_invoices(N);
    // Sent in pieces of 200 rows, 5 ms apart: the kill lands mid-upload.
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(4);
    let pieces: Vec<String> = rows.chunks(200).map(|c| c.concat()).collect();
    common::reqwest::spawn(async move {
        for p in pieces {
            if tx.send(p).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|p| (Ok::<_, std::io::Error>(p), rx))
    });
    let (acked_tx, acked_rx) = std::sync::mpsc::channel::<String>();
    let req = http
        .post(url("invoices"))
        .bearer_auth(common::TOKEN)
        .header("content-type", "application/x-ndjson")
        .body(reqwest::Body::wrap_stream(body));
    common::reqwest::spawn(async move {
        let Ok(resp) = req.send().await else { return };
        let mut resp = resp;
        let mut buf = Vec::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            buf.extend_from_slice(&chunk);
            while let Some(i) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=i).collect();
                let v: Value = serde_json::from_slice(&line).unwrap();
                if v["result"] == "created" {
                    let _ = acked_tx.send(v["id"].as_str().unwrap().to_owned());
                }
            }
        }
    });
    let mut acked = Vec::new();
    let end = Instant::now() + Duration::from_secs(60);
    while acked.len() < 3000 && Instant::now() < end {
        if let Ok(id) = acked_rx.recv_timeout(Duration::from_millis(100)) {
            acked.push(id);
        }
    }
    d.kill();
    // Whatever was already answered before the kill counts too.
    acked.extend(acked_rx.try_iter());
    assert!(
        acked.len() >= 3000,
        "only {} rows acknowledged",
        acked.len()
    );
    assert!(acked.len() < N, "the kill came after the whole upload");

    let d = Daemon::start_existing(dir.path(), port);
    for id in &acked {
        let (st, v) = d.api("GET", &format!("/v1/invoices/{id}"), None);
        assert_eq!(st, 200, "acknowledged {id} lost: {v}");
    }
    // The whole file again: only created or unchanged, no error.
    let all = rows.concat();
    let text = common::reqwest::block_on(async {
        http.post(url("invoices"))
            .bearer_auth(common::TOKEN)
            .header("content-type", "application/x-ndjson")
            .body(all)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let a = parse_answer(200, &text);
    let [rows_n, created, updated, unchanged, errors] = counts(&a.summary);
    assert_eq!(
        (rows_n, updated, errors),
        (N as u64, 0, 0),
        "{:?}",
        a.summary
    );
    assert!(unchanged >= acked.len() as u64, "{:?}", a.summary);
    assert_eq!(created + unchanged, N as u64);
    d.terminate();
}

#[test]
fn cli_imports_the_example_files_clients_first() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let d = start_binary(dir.path(), port);
    let examples = repo().join("config/examples");
    let run = |args: &[&std::path::Path]| {
        let out = Command::new(env!("CARGO_BIN_EXE_plazo"))
            .arg("import")
            .arg("--config")
            .arg(&d.config)
            .args(args)
            .env("PLAZO_API_TOKEN", common::TOKEN)
            .env_remove("PLAZO_URL")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Invoices named first: the clients are still imported before them.
    let inv = examples.join("invoices.csv");
    let cli = examples.join("clients.csv");
    let (code, out, err) = run(&[&inv, &cli]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("(clients): 6 rows: 6 created"), "{out}");
    assert!(out.contains("(invoices): 6 rows: 6 created"), "{out}");
    assert!(out.find("(clients)").unwrap() < out.find("(invoices)").unwrap());
    let (st, v) = d.api("GET", "/v1/invoices/inv-3002", None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["invoice"]["currency"], "EUR");

    let (code, out, _) = run(&[&cli, &inv]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("6 rows: 0 created, 0 updated, 6 unchanged, 0 errors"),
        "{out}"
    );

    // A file with a failing row: its line is printed and the exit code is non-zero.
    let bad = dir.path().join("more.ndjson");
    std::fs::write(
        &bad,
        "{\"id\":\"inv-9\",\"client_id\":\"cli-1\",\"number\":\"FV-9\",\"currency\":\"COP\",\"amount\":\"10\",\"due_at\":\"2026-12-30\"}\n\
         {\"id\":\"inv-10\",\"client_id\":\"nobody\",\"number\":\"FV-10\",\"currency\":\"COP\",\"amount\":\"10\",\"due_at\":\"2026-12-30\"}\n",
    )
    .unwrap();
    let (code, out, err) = run(&[&bad]);
    assert_ne!(code, Some(0), "{out}");
    assert!(
        out.contains("line 2: inv-10:") && out.contains("nobody"),
        "{out}"
    );
    assert!(out.contains("(invoices): 2 rows: 1 created"), "{out}");
    assert!(err.contains("1 row(s) were not imported"), "{err}");
    d.terminate();
}
