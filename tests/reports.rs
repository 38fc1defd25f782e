//! The portfolio reports through the API of an in-process daemon under a manual clock: a
//! small portfolio built with the real endpoints and the real dispatcher (messages to the
//! outbox), the KPIs and the effectiveness report checked against figures worked out by hand,
//! then `plazo report`'s HTML and CSV output made from the same daemon.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use common::inproc::{InProcess, request, start_in_process};
use common::{step, test_policy};

use jiff::Timestamp;
use plazo::clock::ManualClock;
use plazo::daemon::Running;
use serde_json::{Value, json};

const TOKEN: &str = "reports-test-token-81c3";

fn policy() -> String {
    let mut p = test_policy(
        "UTC",
        "es",
        ("06:00", "20:00"),
        &["standard"],
        &[
            step("standard", "due_today", "0d", None, &["email"]),
            step("standard", "firm_overdue", "+2d", None, &["sms"]),
        ],
    );
    p.push_str("[promises]\ngrace = \"0d\"\n");
    p
}

struct Api {
    running: Running,
    base: String,
    clock: ManualClock,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Api {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        request(
            &self.http,
            &self.base,
            method,
            path,
            Some(&format!("Bearer {TOKEN}")),
            body.as_deref(),
        )
        .await
    }
    async fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let (st, v) = self.call(method, path, Some(body)).await;
        assert!((200..300).contains(&st), "{method} {path}: {st} {v}");
        v
    }
    async fn get(&self, path: &str) -> Value {
        let (st, v) = self.call("GET", path, None).await;
        assert_eq!(st, 200, "{path}: {v}");
        v
    }
    fn at(&self, t: &str) {
        self.clock.set(t.parse::<Timestamp>().unwrap());
        self.running.wake_dispatcher();
    }
    /// Waits (real time, at most 20 s) until invoice `id`'s JSON satisfies `ok`.
    async fn wait(&self, id: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let v = self.get(&format!("/v1/invoices/{id}")).await;
            if ok(&v) {
                return v;
            }
            assert!(std::time::Instant::now() < end, "{id}: {what}: {v:#}");
            self.running.wake_dispatcher();
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

fn sent_on(v: &Value, channel: &str) -> usize {
    v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["outcome"] == "sent" && l["channel"] == channel)
        .count()
}

fn invoice(client: &str, amount: &str, issued: &str, due: &str) -> Value {
    json!({"client_id": client, "number": "FV", "currency": "COP", "amount": amount,
           "issued_at": issued, "due_at": due})
}

fn pay(amount: &str, reference: &str) -> Value {
    json!({"amount": amount, "currency": "COP", "reference": reference})
}

/// The portfolio (COP; the policy's zone is UTC; reminders: `due_today` by email on the due
/// date at 09:00, `firm_overdue` by SMS two days later):
///
/// - inv-a (ana): 1000, issued 02-20, due 03-03. Email 03-03 09:00, SMS 03-05 09:00, paid in
///   full 03-06 09:00.
/// - inv-b (bea): 2000, issued 02-01, due 03-03; a promise of 2000 by 03-03 (grace 0d) breaks
///   at 03-04 00:00; the cadence resumes with the SMS of 03-05 09:00; never paid.
/// - inv-e (bea): 300, issued 02-25, due 03-03; a promise of 300 by 03-03, kept by paying 300
///   on 03-02 15:00.
/// - inv-c (bea): 500, issued 03-02, due 04-30: not due yet.
/// - inv-d (ana): 800, issued 02-01, due 03-10; written off 03-02 12:00; 300 recovered 03-08
///   12:00.
/// - bea's phone opted out of WhatsApp on 03-02.
async fn build_portfolio() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let channels = "[routes]\nemail = \"outbox\"\nsms = \"outbox\"\n\n[channels.outbox]\ntype = \"outbox\"\ndir = \"outbox\"\n";
    let (running, clock) = start_in_process(
        dir.path(),
        InProcess {
            policy: &policy(),
            token: TOKEN,
            top: "",
            tables: "",
            now: "2026-03-02T12:00:00Z",
            channels,
        },
    )
    .await;
    let api = Api {
        base: format!("http://{}", running.addr),
        running,
        clock,
        http: reqwest::Client::new(),
        dir,
    };
    for (id, phone) in [("ana", "+573001112233"), ("bea", "+573004445566")] {
        api.ok(
            "PUT",
            &format!("/v1/clients/{id}"),
            json!({"name": id, "email": format!("{id}@cliente.example.co"), "phone": phone}),
        )
        .await;
    }
    for (id, client, amount, issued, due) in [
        ("inv-a", "ana", "1000", "2026-02-20", "2026-03-03"),
        ("inv-b", "bea", "2000", "2026-02-01", "2026-03-03"),
        ("inv-e", "bea", "300", "2026-02-25", "2026-03-03"),
        ("inv-c", "bea", "500", "2026-03-02", "2026-04-30"),
        ("inv-d", "ana", "800", "2026-02-01", "2026-03-10"),
    ] {
        api.ok(
            "PUT",
            &format!("/v1/invoices/{id}"),
            invoice(client, amount, issued, due),
        )
        .await;
    }
    api.ok(
        "POST",
        "/v1/invoices/inv-b/promises",
        json!({"amount": "2000", "date": "2026-03-03"}),
    )
    .await;
    api.ok(
        "POST",
        "/v1/invoices/inv-e/promises",
        json!({"amount": "300", "date": "2026-03-03"}),
    )
    .await;
    api.ok(
        "POST",
        "/v1/invoices/inv-d/write-off",
        json!({"reason": "client closed"}),
    )
    .await;
    api.ok(
        "POST",
        "/v1/contacts/+573004445566/opt-out",
        json!({"channel": "whatsapp", "reason": "asked by phone"}),
    )
    .await;
    api.at("2026-03-02T15:00:00Z");
    api.ok("POST", "/v1/invoices/inv-e/payments", pay("300", "e-1"))
        .await;
    api.at("2026-03-03T09:00:00Z");
    api.wait("inv-a", "the email", |v| sent_on(v, "email") == 1)
        .await;
    api.at("2026-03-04T00:00:01Z");
    api.wait("inv-b", "the broken promise", |v| {
        v["invoice"]["arrangements"][0]["state"] == "broken"
    })
    .await;
    api.at("2026-03-05T09:00:00Z");
    api.wait("inv-a", "the SMS", |v| sent_on(v, "sms") == 1)
        .await;
    let b = api
        .wait("inv-b", "the SMS", |v| sent_on(v, "sms") == 1)
        .await;
    assert_eq!(sent_on(&b, "email"), 0, "the promise held the email back");
    api.at("2026-03-06T09:00:00Z");
    api.ok("POST", "/v1/invoices/inv-a/payments", pay("1000", "a-1"))
        .await;
    api.at("2026-03-08T12:00:00Z");
    api.ok("POST", "/v1/invoices/inv-d/payments", pay("300", "d-1"))
        .await;
    api.at("2026-03-09T00:00:00Z");
    api
}

const QUERY: &str = "?as_of=2026-03-08&from=2026-03-01&to=2026-03-09";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpis_effectiveness_and_the_report_of_a_fixed_portfolio() {
    let api = build_portfolio().await;
    let k = api.get(&format!("/v1/reports/kpis{QUERY}")).await;
    assert_eq!(k["as_of"], "2026-03-09T00:00:00Z", "the end of 03-08");
    assert_eq!(k["period_days"], 8.0);
    let cop = &k["currencies"][0];
    assert_eq!(k["currencies"].as_array().unwrap().len(), 1);
    assert_eq!(cop["currency"], "COP");
    // At 03-09: inv-a and inv-e paid, inv-d written off: inv-b 2000 + inv-c 500.
    assert_eq!(cop["receivables"], "2500.00");
    // inv-c is due 04-30 (current); inv-b 6 days overdue (03-03 to 03-09).
    assert_eq!(
        cop["aging"][0],
        json!({"bucket": "current", "count": 1, "balance": "500.00"})
    );
    assert_eq!(
        cop["aging"][1],
        json!({"bucket": "1-30", "count": 1, "balance": "2000.00"})
    );
    // Invoiced in [03-01, 03-09): inv-c 500. DSO = 2500 / 500 * 8 days = 40.
    assert_eq!(cop["invoiced"], "500.00");
    assert_eq!(cop["dso_days"], 40.0);
    assert!(
        k["dso_method"]
            .as_str()
            .unwrap()
            .contains("days in the period")
    );
    // Opening (03-01): inv-a 1000 + inv-b 2000 + inv-e 300 + inv-d 800 (written off later)
    // = 4100. CEI = (4100 + 500 - 2500) / (4100 + 500 - 500) * 100 = 2100 / 4100 * 100.
    assert_eq!(cop["cei"]["opening_receivables"], "4100.00");
    assert_eq!(cop["cei"]["closing_current"], "500.00");
    let cei = cop["cei"]["percent"].as_f64().unwrap();
    assert!((cei - 2100.0 / 4100.0 * 100.0).abs() < 1e-9, "{cei}");
    // Paid in full: inv-e 02-25 -> 03-02 = 5 days, on time; inv-a 02-20 -> 03-06 = 14 days,
    // 3 after its due date. Means: 9.5 and 1.5.
    assert_eq!(cop["days_to_pay"]["invoices"], 2);
    assert_eq!(cop["days_to_pay"]["avg_days_to_pay"], 9.5);
    assert_eq!(cop["days_to_pay"]["avg_days_after_due"], 1.5);
    assert_eq!(cop["written_off"], json!({"count": 1, "amount": "800.00"}));
    assert_eq!(cop["recovered_after_write_off"], "300.00");
    // 300 + 1000 in the week from 03-01, 300 in the (one-day) week from 03-08.
    assert_eq!(cop["collections"]["total"], "1600.00");
    assert_eq!(
        cop["collections"]["weeks"],
        json!([{"start": "2026-03-01T00:00:00Z", "amount": "1300.00"},
               {"start": "2026-03-08T00:00:00Z", "amount": "300.00"}])
    );
    assert_eq!(k["arrangements"]["promises_kept"], 1);
    assert_eq!(k["arrangements"]["promises_broken"], 1);
    assert_eq!(k["arrangements"]["promise_kept_rate"], 0.5);
    // One email (inv-a), two SMS (inv-a, inv-b); the outbox reports no delivery; one opt-out.
    let channels = &k["channels"];
    let by = |name: &str| {
        channels
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == name)
            .unwrap_or_else(|| panic!("no {name} in {channels:#}"))
            .clone()
    };
    assert_eq!(by("email")["contacts"], 1);
    assert_eq!(by("sms")["contacts"], 2);
    assert_eq!(by("sms")["delivered"], 0);
    assert_eq!(by("whatsapp")["opt_outs"], 1);

    // Which reminder works: inv-a's payment (03-06 09:00) goes to its SMS (03-05 09:00, one
    // day before), the last message before it, not to its email.
    let e = api
        .get("/v1/reports/effectiveness?from=2026-03-01&to=2026-03-09")
        .await;
    let rows = e["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{e:#}");
    assert_eq!(
        (&rows[0]["step"], &rows[0]["channel"], &rows[0]["sent"]),
        (&json!("due_today"), &json!("email"), &json!(1))
    );
    assert_eq!(rows[0]["paid"], 0);
    assert_eq!(rows[0]["share_paid_7d"], 0.0);
    assert_eq!(rows[0]["median_days_to_pay"], Value::Null);
    assert_eq!(rows[1]["step"], "firm_overdue");
    assert_eq!(rows[1]["segment"], "standard");
    // Two SMS (inv-a, inv-b), one followed by full payment after exactly one day.
    assert_eq!(rows[1]["sent"], 2);
    assert_eq!(rows[1]["share_paid_3d"], 0.5);
    assert_eq!(rows[1]["share_paid_7d"], 0.5);
    assert_eq!(rows[1]["median_days_to_pay"], 1.0);

    // A bad parameter is refused with what to fix.
    let (st, v) = api.call("GET", "/v1/reports/kpis?as_of=soon", None).await;
    assert_eq!(st, 422, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("as_of"),
        "{v}"
    );
    let (st, _) = request(&api.http, &api.base, "GET", "/v1/reports/kpis", None, None).await;
    assert_eq!(st, 401, "bearer auth like the rest of /v1");

    // The report, from the same daemon.
    let remote = plazo::remote::Remote::new(&api.base, TOKEN).unwrap();
    let query = plazo::service::reports::ReportQuery {
        as_of: Some("2026-03-08".into()),
        from: Some("2026-03-01".into()),
        to: Some("2026-03-09".into()),
        ..Default::default()
    };
    let data = plazo::report::fetch(&remote, &query).await.unwrap();
    let out = api.dir.path().join("report.html");
    plazo::report::write(&data, plazo::report::Format::Html, &out).unwrap();
    let html = std::fs::read_to_string(&out).unwrap();
    check_html(&html);
    // `REPORT_TEST_KEEP=/tmp/report.html` keeps a copy to open by hand.
    if let Ok(keep) = std::env::var("REPORT_TEST_KEEP") {
        std::fs::copy(&out, keep).unwrap();
    }
    chromium_check(&out);
    let csv_dir = api.dir.path().join("csv");
    plazo::report::write(&data, plazo::report::Format::Csv, &csv_dir).unwrap();
    check_csv(&csv_dir);
    // The same through the command line: `plazo report` finds the daemon by PLAZO_URL and the
    // token through the config's [api] token file.
    let (dir, base) = (api.dir.path().to_owned(), api.base.clone());
    let run = move |args: Vec<String>| {
        std::process::Command::new(env!("CARGO_BIN_EXE_plazo"))
            .arg("report")
            .arg("--config")
            .arg(dir.join("plazo.toml"))
            .args(args)
            .env("PLAZO_URL", &base)
            .output()
            .unwrap()
    };
    let html_out = api.dir.path().join("cli.html");
    let csv_out = api.dir.path().join("cli-csv");
    let (h, c) = (html_out.clone(), csv_out.clone());
    let (html_run, csv_run) = tokio::task::spawn_blocking(move || {
        let q = [
            "--as-of",
            "2026-03-08",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-09",
        ];
        let mut a: Vec<String> = vec!["--out".into(), h.display().to_string()];
        a.extend(q.iter().map(|s| s.to_string()));
        let mut b: Vec<String> = vec![
            "--format".into(),
            "csv".into(),
            "--out".into(),
            c.display().to_string(),
        ];
        b.extend(q.iter().map(|s| s.to_string()));
        (run(a), run(b))
    })
    .await
    .unwrap();
    assert!(html_run.status.success(), "{html_run:?}");
    assert!(csv_run.status.success(), "{csv_run:?}");
    check_html(&std::fs::read_to_string(&html_out).unwrap());
    check_csv(&csv_out);
    api.running.shutdown().await.unwrap();
}

fn check_html(html: &str) {
    // Three charts: aging, collections, effectiveness, each an inline SVG.
    assert_eq!(html.matches("<svg").count(), 3, "{html}");
    for id in ["aging-COP", "collections-COP", "effectiveness"] {
        assert!(html.contains(&format!("<figure id=\"{id}\"><svg")), "{id}");
    }
    // The aging chart names its buckets; the effectiveness chart its series and bars.
    for label in [
        "Aging of receivables (COP)",
        ">current<",
        ">1-30<",
        ">over_180<",
        "Collections per week (COP)",
        "paid within 3 days",
        "paid within 7 days",
        "standard/firm_overdue/sms",
        "standard/due_today/email",
    ] {
        assert!(html.contains(label), "no {label:?} in the page");
    }
    // The KPI tables.
    for cell in [
        "<td>2500.00</td>",
        "<td>40.0</td>",
        "<td>51.2</td>",
        "<td>800.00 (1 invoices)</td>",
    ] {
        assert!(html.contains(cell), "no {cell} in the page");
    }
    // Nothing to fetch: no src or href to anything, no script.
    let lower = html.to_ascii_lowercase();
    for bad in ["src=", "href=", "<script", "url(", "@import"] {
        assert!(!lower.contains(bad), "the page references {bad}");
    }
}

fn check_csv(dir: &std::path::Path) {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let kpis = read("kpis.csv");
    assert!(kpis.starts_with("currency,kpi,value\n"), "{kpis}");
    assert!(kpis.contains("COP,receivables,2500.00\n"), "{kpis}");
    assert!(kpis.contains("COP,dso_days,40.0000\n"), "{kpis}");
    assert!(
        kpis.contains("COP,recovered_after_write_off,300.00\n"),
        "{kpis}"
    );
    let aging = read("aging.csv");
    assert_eq!(
        aging,
        "currency,bucket,count,balance\nCOP,current,1,500.00\nCOP,1-30,1,2000.00\nCOP,31-60,0,0.00\nCOP,61-90,0,0.00\nCOP,91-180,0,0.00\nCOP,over_180,0,0.00\n"
    );
    assert_eq!(
        read("collections.csv"),
        "currency,week_start,amount\nCOP,2026-03-01T00:00:00Z,1300.00\nCOP,2026-03-08T00:00:00Z,300.00\n"
    );
    assert_eq!(
        read("effectiveness.csv"),
        "segment,step,channel,sent,paid,paid_within_3d,paid_within_7d,share_paid_3d,share_paid_7d,median_days_to_pay\n\
         standard,due_today,email,1,0,0,0,0.0000,0.0000,\n\
         standard,firm_overdue,sms,2,1,1,1,0.5000,0.5000,1.0000\n"
    );
    let channels = read("channels.csv");
    assert!(channels.starts_with("channel,contacts,delivered,failures,inbound,opt_outs\n"));
    assert!(channels.contains("sms,2,0,0,0,0\n"), "{channels}");
    assert!(read("arrangements.csv").contains("promise,1,1,0.5000\n"));
}

/// Opens the page in headless Chromium when it is installed (`--dump-dom`): the DOM it built
/// has the three charts. Skipped, saying so, without Chromium (CI may not have it).
fn chromium_check(page: &std::path::Path) {
    let Some(bin) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
    else {
        eprintln!("chromium not found: skipping the headless-browser check of the report");
        return;
    };
    let out = std::process::Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--dump-dom",
            &format!("file://{}", page.display()),
        ])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert_eq!(dom.matches("<svg").count(), 3, "{dom}");
}
