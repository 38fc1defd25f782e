//! Policy simulation (issue 13, item 6): the simulation's messages are exactly those the real
//! dispatcher sends over the same days (client, invoice, step, channel, time) with contact
//! hours, Colombian holidays and caps, grouping and a debtor's blocked times in play (the
//! planner already plans around hours and holidays; caps hold sends at dispatch); the
//! live store is left as it was; a candidate policy's difference is counted.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests may read the real clock

mod common;

use std::sync::Arc;

use common::sim::{Sim, ts};
use common::{step, test_policy};
use jiff::{SignedDuration, Timestamp};
use plazo::config::{DispatchConfig, SimulationConfig};
use plazo::policy::parse_policy;
use plazo::service::resegment_all;
use plazo::simulate::{SimMessage, SimulateRequest, SimulationEnv, simulate};

const START: &str = "2026-12-03T12:00:00Z";
const DAYS: u32 = 30;
const PASS: &str = "0 30 5 * * *";

fn policy() -> String {
    let mut p = test_policy(
        "America/Bogota",
        "es",
        ("08:00", "19:00"),
        &["standard", "vip"],
        &[
            step("standard", "courtesy", "-3d", None, &["email"]),
            step("standard", "due_today", "0d", None, &["sms", "email"]),
            step("standard", "friendly_overdue", "+5d", None, &["email"]),
            step("standard", "firm_overdue", "+12d", None, &["sms", "email"]),
            step("vip", "due_today", "0d", None, &["email"]),
            step("vip", "final_notice", "+7d", None, &["email", "sms"]),
        ],
    );
    p = p.replacen(
        "[segments.vip]\ncadence = \"vip\"\n",
        "[segments.vip]\ncadence = \"vip\"\ngroup = \"client\"\n",
        1,
    );
    p.push_str("[compliance]\napply = \"by_country\"\n");
    p
}

/// 24 clients in Colombia, Mexico and Spain with one to four invoices each, due across the
/// month (the Colombian holiday of 8 December and Christmas included); every third client is
/// vip (one message a day, grouped); one asked not to be contacted in the mornings; one
/// Colombian client owes three invoices due the same day (one contact a day by law).
fn portfolio(sim: &Sim) {
    let places = [
        ("CO", "America/Bogota", "+573001234567"),
        ("MX", "America/Mexico_City", "+525512345678"),
        ("ES", "Europe/Madrid", "+34612345678"),
    ];
    let dues = [
        "2026-12-04",
        "2026-12-07",
        "2026-12-08",
        "2026-12-09",
        "2026-12-11",
        "2026-12-15",
        "2026-12-18",
        "2026-12-24",
        "2026-12-25",
        "2026-11-28",
    ];
    for c in 0..24usize {
        let (country, tz, phone) = places[c % 3];
        let mut body = serde_json::json!({
            "name": format!("Cliente {c}"), "email": format!("c{c}@example.co"),
            "timezone": tz, "country": country,
        });
        if c % 4 != 3 {
            body["phone"] = phone.into();
        }
        if c % 3 == 0 {
            body["tags"] = serde_json::json!(["vip"]);
        }
        if c == 5 {
            body["blocked_times"] =
                serde_json::json!([{"days": "mon-fri", "from": "08:00", "to": "13:00"}]);
        }
        sim.client(&format!("c{c:02}"), body);
        for i in 0..(1 + c % 4) {
            let due = dues[(c * 3 + i * 7) % dues.len()];
            sim.invoice_due(&format!("inv-{c:02}-{i}"), &format!("c{c:02}"), due);
        }
    }
    sim.client(
        "c24",
        serde_json::json!({"name": "Tres Facturas", "email": "c24@example.co",
                           "phone": "+573001234568", "country": "CO"}),
    );
    for i in 0..3 {
        sim.invoice_due(&format!("inv-24-{i}"), "c24", "2026-12-10");
    }
}

fn env(dir: &std::path::Path) -> SimulationEnv {
    SimulationEnv {
        scratch_root: dir.join("simulations"),
        routed: vec!["email".into(), "sms".into()],
        dispatch: DispatchConfig {
            max_attempts: 3,
            backoff_base_secs: 60,
            backoff_max_secs: 3600,
            ..DispatchConfig::default()
        },
        resegment: Some(PASS.into()),
        settings: SimulationConfig {
            prices: [("sms".to_owned(), "0.0079".parse().unwrap())].into(),
            ..SimulationConfig::default()
        },
        policy_path: dir.join("policy.toml"),
        busy: tokio::sync::Mutex::new(()),
    }
}

/// The real dispatcher over the same days: the clock jumps to each due reminder (and to each
/// 05:30 UTC daily pass, as the daemon's housekeeping runs it); what the recording channels
/// accept at each jump went out then.
async fn real_run(sim: &Sim, to: Timestamp) -> Vec<(Timestamp, String, String, String, String)> {
    let mut out = Vec::new();
    let mut next_pass = ts("2026-12-04T05:30:00Z");
    let (mut emails, mut smses) = (0, 0);
    for _ in 0..100_000 {
        let due = sim.store.next_due().unwrap();
        let pass_first = due.is_none_or(|d| next_pass <= d);
        let t = if pass_first { next_pass } else { due.unwrap() };
        if t >= to {
            return out;
        }
        let now = t.max(sim.now());
        if pass_first {
            sim.clock.set(now);
            resegment_all(&sim.store, &sim.policy.current().policy, now).unwrap();
            next_pass += SignedDuration::from_hours(24);
            continue;
        }
        sim.at_ts(now).await;
        for (ch, seen, kind) in [
            (&sim.email, &mut emails, "email"),
            (&sim.sms, &mut smses, "sms"),
        ] {
            let sent = ch.sent();
            for m in &sent[*seen..] {
                out.push((
                    now,
                    m.client_id.to_string(),
                    m.invoice_id.to_string(),
                    m.step.clone(),
                    kind.to_owned(),
                ));
            }
            *seen = sent.len();
        }
    }
    panic!("the real run did not reach its end");
}

fn key(m: &SimMessage) -> (Timestamp, String, String, String, String) {
    (
        m.at,
        m.client_id.clone(),
        m.invoice_id.clone(),
        m.step.clone(),
        m.channel.clone(),
    )
}

#[tokio::test]
async fn a_simulation_sends_exactly_what_the_dispatcher_sends_over_the_same_days() {
    let sim = Sim::new(&policy(), START);
    portfolio(&sim);
    let before_due = sim.store.next_due().unwrap();
    let before_pending = sim.store.pending_count().unwrap();
    let env = env(sim.dir.path());
    let report = simulate(
        &sim.store,
        sim.policy.current(),
        SimulateRequest {
            days: DAYS,
            candidate: None,
            with_messages: true,
        },
        &env,
        ts(START),
    )
    .await
    .unwrap();
    // Nothing sent, nothing changed in the live store, the scratch store is gone.
    assert_eq!(sim.email.calls() + sim.sms.calls(), 0);
    assert_eq!(sim.store.next_due().unwrap(), before_due);
    assert_eq!(sim.store.pending_count().unwrap(), before_pending);
    assert_eq!(
        std::fs::read_dir(env.scratch_root.clone()).unwrap().count(),
        0,
        "scratch stores are removed"
    );
    assert_eq!(report.portfolio.clients, 25);
    let simulated: Vec<_> = report
        .current
        .sent
        .as_ref()
        .unwrap()
        .iter()
        .map(key)
        .collect();

    let to = ts(START) + SignedDuration::from_hours(24 * i64::from(DAYS));
    let mut real = real_run(&sim, to).await;
    let mut simulated_sorted = simulated.clone();
    simulated_sorted.sort();
    real.sort();
    assert!(real.len() > 40, "a busy month: {} messages", real.len());
    assert_eq!(simulated_sorted, real, "same messages, same times");

    // The rules did their work, and the report says so.
    let c = &report.current;
    assert_eq!(c.messages as usize, real.len());
    // Three same-day invoices under Colombian law: two held back per step, each time.
    assert!(c.caps_hit >= 2, "{:?}", c.deferrals);
    assert_eq!(
        c.deferrals.values().sum::<u64>(),
        c.caps_hit,
        "{:?}",
        c.deferrals
    );
    assert_eq!(c.by_channel.values().sum::<u64>(), c.messages);
    assert_eq!(
        c.by_day.values().flat_map(|d| d.values()).sum::<u64>(),
        c.messages
    );
    let sms = c.by_channel.get("sms").copied().unwrap_or(0);
    assert!(sms > 0);
    assert_eq!(
        c.cost.total.parse::<rust_decimal::Decimal>().unwrap(),
        rust_decimal::Decimal::from(sms) * "0.0079".parse::<rust_decimal::Decimal>().unwrap()
    );
    assert!(c.by_segment.contains_key("vip") && c.by_segment.contains_key("standard"));
}

#[tokio::test]
async fn a_candidate_policy_is_compared_with_the_one_in_force() {
    let sim = Sim::new(&policy(), START);
    portfolio(&sim);
    // The candidate drops SMS from due_today and adds a second courtesy email.
    let candidate_text = policy().replace(
        "name = \"due_today\"\noffset = \"0d\"\nchannels = [\"sms\", \"email\"]",
        "name = \"due_today\"\noffset = \"0d\"\nchannels = [\"email\"]",
    );
    assert_ne!(candidate_text, policy());
    let path = sim.dir.path().join("candidate.toml");
    std::fs::write(&path, &candidate_text).unwrap();
    let candidate = parse_policy(&candidate_text, &path).unwrap();
    let env = env(sim.dir.path());
    let report = simulate(
        &sim.store,
        sim.policy.current(),
        SimulateRequest {
            days: DAYS,
            candidate: Some(Arc::new(candidate)),
            with_messages: false,
        },
        &env,
        ts(START),
    )
    .await
    .unwrap();
    let cur = &report.current;
    let cand = report.candidate.as_ref().unwrap();
    let diff = report.difference.as_ref().unwrap();
    assert!(cur.sent.is_none());
    assert_eq!(diff.messages, cand.messages as i64 - cur.messages as i64);
    let sms =
        |o: &plazo::simulate::PolicyOutcome| o.by_channel.get("sms").copied().unwrap_or(0) as i64;
    assert!(
        sms(cand) < sms(cur),
        "fewer SMS: {:?} vs {:?}",
        cand.by_channel,
        cur.by_channel
    );
    assert_eq!(diff.by_channel["sms"], sms(cand) - sms(cur));
    assert!(diff.cost.starts_with('-'), "cheaper: {}", diff.cost);
    // Bounds.
    let err = simulate(
        &sim.store,
        sim.policy.current(),
        SimulateRequest {
            days: 0,
            candidate: None,
            with_messages: false,
        },
        &env,
        ts(START),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("days"), "{err}");
}

/// Through the daemon: `POST /v1/simulate` with a candidate policy, and `plazo simulate`
/// against the running daemon; an invalid candidate is refused with its location; the outbox
/// stays empty (nothing sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_and_the_cli_simulate_against_the_running_daemon() {
    use common::inproc::{InProcess, request, start_in_process};
    const TOKEN: &str = "simulate-token-77";
    let dir = tempfile::tempdir().unwrap();
    let (running, _clock) = start_in_process(
        dir.path(),
        InProcess {
            policy: &policy(),
            token: TOKEN,
            top: "",
            tables: "[simulation]\ncurrency = \"USD\"\nprices = { sms = \"0.0079\", email = \"0.0001\" }\n",
            now: START,
            channels: "[routes]\nemail = \"outbox\"\nsms = \"outbox\"\n\n[channels.outbox]\ntype = \"outbox\"\ndir = \"outbox\"\n",
        },
    )
    .await;
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let auth = format!("Bearer {TOKEN}");
    let put = |path: String, body: serde_json::Value| {
        let (http, base, auth) = (http.clone(), base.clone(), auth.clone());
        async move {
            let (st, v) = request(
                &http,
                &base,
                "PUT",
                &path,
                Some(&auth),
                Some(&body.to_string()),
            )
            .await;
            assert!(st == 200 || st == 201, "{path}: {v}");
        }
    };
    put(
        "/v1/clients/c1".into(),
        serde_json::json!({"name": "Ana", "email": "ana@example.co", "phone": "+573001234567", "country": "CO"}),
    )
    .await;
    for (i, due) in ["2026-12-09", "2026-12-15"].iter().enumerate() {
        put(
            format!("/v1/invoices/i{i}"),
            serde_json::json!({"client_id": "c1", "number": format!("FV-{i}"), "currency": "COP",
                               "amount": "100000", "due_at": due}),
        )
        .await;
    }
    let candidate = policy().replace(
        "name = \"due_today\"\noffset = \"0d\"\nchannels = [\"sms\", \"email\"]",
        "name = \"due_today\"\noffset = \"0d\"\nchannels = [\"email\"]",
    );
    let body = serde_json::json!({"days": 30, "policy": candidate});
    let (st, v) = request(
        &http,
        &base,
        "POST",
        "/v1/simulate",
        Some(&auth),
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["portfolio"]["invoices"], 2);
    // Each invoice: courtesy, due_today (SMS first), friendly, firm (SMS first).
    assert_eq!(v["current"]["messages"], 8, "{v}");
    assert_eq!(v["current"]["by_channel"]["sms"], 4, "{v}");
    assert_eq!(v["candidate"]["by_channel"]["sms"], 2, "{v}");
    assert_eq!(v["difference"]["by_channel"]["sms"], -2);
    assert_eq!(v["current"]["cost"]["total"], "0.032");
    assert_eq!(v["difference"]["cost"], "-0.0156");

    let bad = serde_json::json!({"days": 30, "policy": "default_segment = \"nope\"\n"});
    let (st, v) = request(
        &http,
        &base,
        "POST",
        "/v1/simulate",
        Some(&auth),
        Some(&bad.to_string()),
    )
    .await;
    assert_eq!(st, 422, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("candidate.toml"),
        "{v}"
    );
    let (st, v) = request(
        &http,
        &base,
        "POST",
        "/v1/simulate",
        Some(&auth),
        Some("{\"days\": 1000}"),
    )
    .await;
    assert_eq!(st, 422, "{v}");

    // The CLI, against the same daemon.
    let cand_path = dir.path().join("candidate.toml");
    std::fs::write(&cand_path, &candidate).unwrap();
    let cfg = dir.path().join("plazo.toml");
    let out = simulate_cli(&cfg, &cand_path, &base, &["--days", "30"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sms = text
        .lines()
        .find(|l| l.trim_start().starts_with("channel sms"))
        .unwrap();
    assert_eq!(
        sms.split_whitespace().collect::<Vec<_>>(),
        ["channel", "sms", "4", "2", "-2"],
        "{text}"
    );
    assert!(text.contains("estimated cost (USD)"), "{text}");
    // A candidate that does not parse: the CLI fails and says where.
    std::fs::write(&cand_path, "default_segment = \"nope\"\n").unwrap();
    let out = simulate_cli(&cfg, &cand_path, &base, &[]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("candidate policy is not valid"), "{err}");
    // Nothing went out.
    let outbox = dir.path().join("data/outbox");
    let sent = std::fs::read_dir(&outbox).map(|d| d.count()).unwrap_or(0);
    assert_eq!(sent, 0, "the simulation sent nothing");
    running.shutdown().await.unwrap();
}

/// `plazo simulate ARGS... --config CFG --policy CANDIDATE` against the daemon at `url`.
async fn simulate_cli(
    cfg: &std::path::Path,
    candidate: &std::path::Path,
    url: &str,
    args: &[&str],
) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_plazo"));
    cmd.arg("simulate")
        .args(args)
        .arg("--config")
        .arg(cfg)
        .arg("--policy")
        .arg(candidate)
        .env("PLAZO_URL", url);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}
