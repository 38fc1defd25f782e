//! Contact rules through the real dispatcher under a manual clock: a client's invoices due the
//! same day are spread one a day by Colombia's cap, holidays hold reminders back, and a
//! property test over random policies, zones (across DST changes), holidays and due dates
//! checks that nothing goes out outside the intersected hours or on a closed holiday, no cap
//! is exceeded, and every reminder is sent or skipped with a reason (none lost).

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use std::collections::BTreeMap;

use common::sim::{Sim, ts};
use common::{step, test_policy};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use plazo::compliance::rules::ContactRules;
use plazo::domain::{AttemptOutcome, ClientId};
use plazo::schedule::segment_followed;
use proptest::prelude::*;

const BY_COUNTRY: &str = "[compliance]\napply = \"by_country\"\n";

fn colombian_policy() -> String {
    let mut p = test_policy(
        "America/Bogota",
        "es",
        ("00:00", "24:00"),
        &["c"],
        &[step("c", "due_today", "0d", None, &["email"])],
    );
    p.push_str(BY_COUNTRY);
    p
}

/// Ana, a Colombian client, with `invoices` all due on `due`.
fn ana_with(sim: &Sim, invoices: &[&str], due: &str) {
    sim.client(
        "ana",
        serde_json::json!({"name": "Ana", "email": "ana@example.co", "country": "CO"}),
    );
    for inv in invoices {
        sim.invoice_due(inv, "ana", due);
    }
}

fn sent_at(sim: &Sim, inv: &str) -> Vec<Timestamp> {
    sim.outcomes(inv, AttemptOutcome::Sent)
        .into_iter()
        .map(|a| a.at)
        .collect()
}

#[tokio::test]
async fn three_invoices_due_the_same_day_go_one_a_day_under_colombian_law() {
    // Now: Monday 2026-12-07 08:00 Bogotá.
    let sim = Sim::new(&colombian_policy(), "2026-12-07T13:00:00Z");
    ana_with(&sim, &["inv-a", "inv-b", "inv-c"], "2026-12-09");
    assert_eq!(sim.at("2026-12-09T14:00:00Z").await, 3);
    let sent: Vec<&str> = ["inv-a", "inv-b", "inv-c"]
        .into_iter()
        .filter(|i| !sent_at(&sim, i).is_empty())
        .collect();
    assert_eq!(sent.len(), 1, "one contact a day: {sent:?}");
    // The two others say why and when they go.
    let held: Vec<&str> = ["inv-a", "inv-b", "inv-c"]
        .into_iter()
        .filter(|i| !sent.contains(i))
        .collect();
    for inv in &held {
        let lines = sim.lines_with(
            inv,
            "deferred: co_ley_2300 allows 1 contact a day; next 2026-12-10 07:00 America/Bogota",
        );
        assert_eq!(lines.len(), 1, "{inv}: {:#?}", sim.timeline(inv));
        assert_eq!(lines[0].outcome, AttemptOutcome::Deferred);
    }
    // Thursday 07:00 Bogotá: one more; Friday 07:00: the last.
    assert_eq!(sim.at("2026-12-10T12:00:00Z").await, 2);
    assert_eq!(sim.emailed_steps().len(), 2);
    assert_eq!(sim.at("2026-12-11T12:00:00Z").await, 1);
    assert_eq!(sim.emailed_steps().len(), 3);
    for inv in ["inv-a", "inv-b", "inv-c"] {
        assert!(sim.pending(inv).is_none(), "{inv} still pending");
    }
}

#[tokio::test]
async fn a_reminder_due_on_a_colombian_holiday_waits_for_the_next_working_day() {
    let sim = Sim::new(&colombian_policy(), "2026-12-01T13:00:00Z");
    sim.client(
        "ana",
        serde_json::json!({"name": "Ana", "email": "ana@example.co", "country": "CO"}),
    );
    // Due Tuesday 8 December 2026, the Immaculate Conception: planned for Wednesday 07:00.
    let next = sim.invoice_due("inv-1", "ana", "2026-12-08");
    assert_eq!(next, Some(ts("2026-12-09T12:00:00Z")));
    assert_eq!(sim.at("2026-12-08T14:00:00Z").await, 0);
    assert_eq!(sim.at("2026-12-09T12:00:00Z").await, 1);
    assert_eq!(sim.emailed_steps(), ["due_today"]);
    // Without [compliance] the same invoice goes on the holiday itself.
    let plain = test_policy(
        "America/Bogota",
        "es",
        ("00:00", "24:00"),
        &["c"],
        &[step("c", "due_today", "0d", None, &["email"])],
    );
    let sim = Sim::new(&plain, "2026-12-01T13:00:00Z");
    sim.client(
        "ana",
        serde_json::json!({"name": "Ana", "email": "ana@example.co", "country": "CO"}),
    );
    assert_eq!(
        sim.invoice_due("inv-1", "ana", "2026-12-08"),
        Some(ts("2026-12-08T14:00:00Z"))
    );
}

#[tokio::test]
async fn a_wrong_subdivision_is_refused_with_the_known_ones() {
    let sim = Sim::new(&colombian_policy(), "2026-12-01T13:00:00Z");
    let input: plazo::service::ClientInput = serde_json::from_value(serde_json::json!({
        "name": "Bia", "email": "bia@example.com.br", "country": "BR", "subdivision": "XX"
    }))
    .unwrap();
    let p = sim.policy.current();
    let err = plazo::service::upsert_client(
        &sim.store,
        &p.policy,
        &ClientId::new("bia").unwrap(),
        input,
        sim.now(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("\"XX\" is not a subdivision of BR"), "{err}");
    assert!(err.contains("SP"), "{err}");
    assert!(
        sim.store
            .client(&ClientId::new("bia").unwrap())
            .unwrap()
            .is_none()
    );
    // Accepted as BR-SP whichever way it is written.
    sim.client(
        "bia",
        serde_json::json!({"name": "Bia", "email": "bia@example.com.br", "country": "br", "subdivision": "sp"}),
    );
    assert_eq!(
        sim.client_record("bia").subdivision.as_deref(),
        Some("BR-SP")
    );
}

// ------------------------------------------------------------------ property test

/// A debtor the property test chases: country, subdivision, zone.
const DEBTORS: [(&str, Option<&str>, &str); 4] = [
    ("CO", None, "America/Bogota"),
    ("CL", None, "America/Santiago"),
    ("BR", Some("SP"), "America/Sao_Paulo"),
    ("US", None, "America/New_York"),
];

#[derive(Debug, Clone)]
struct Case {
    debtor: usize,
    max_late: Option<u8>,
    grouped: bool,
    window: (u8, u8, bool),
    offsets: Vec<i32>,
    dues: Vec<(u8, u8)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (0..DEBTORS.len(), prop::option::of(1u8..4), any::<bool>()),
        (0u8..12, 13u8..24, any::<bool>()),
        prop::collection::btree_set(-5i32..25, 1..4),
        // Several invoices due within a few days of each other (so caps have something to
        // hold back), in March (New York's DST change on the 8th), April (Santiago's on the
        // 5th) or September (Santiago's spring forward on the 6th).
        prop::collection::vec((prop::sample::select(vec![3u8, 4, 9]), 1u8..9), 2..5),
    )
        .prop_map(
            |((debtor, max_late, grouped), window, offsets, dues)| Case {
                debtor,
                max_late,
                grouped,
                window,
                offsets: offsets.into_iter().collect(),
                dues,
            },
        )
}

fn case_policy(c: &Case) -> String {
    let steps: Vec<String> = c
        .offsets
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let name = ["courtesy", "due_today", "friendly_overdue", "firm_overdue"][i % 4];
            let mut s = step("c", name, &format!("{o:+}d"), None, &["email"]);
            s = s.replacen(
                &format!("name = \"{name}\""),
                &format!("name = \"s{i}\""),
                1,
            );
            s
        })
        .collect();
    let (from, to, weekends) = c.window;
    let mut p = test_policy(
        DEBTORS[c.debtor].2,
        "es",
        (&format!("{from:02}:00"), &format!("{to:02}:00")),
        &["c"],
        &steps,
    );
    if !weekends {
        p = p.replace("days = \"daily\"", "days = \"mon-fri\"");
    }
    if c.grouped {
        p = grouped(p);
    }
    p.push_str(BY_COUNTRY);
    match c.max_late {
        Some(days) => with_max_late(p, &format!("{days}d")),
        None => p,
    }
}

async fn run_case(c: Case) -> Result<(), TestCaseError> {
    let (country, sub, zone_name) = DEBTORS[c.debtor];
    let sim = Sim::new(&case_policy(&c), "2026-02-20T12:00:00Z");
    let mut client = serde_json::json!({"name": "Ana", "email": "ana@example.co", "country": country, "timezone": zone_name});
    if let Some(s) = sub {
        client["subdivision"] = s.into();
    }
    sim.client("ana", client);
    let ids: Vec<String> = (0..c.dues.len()).map(|i| format!("inv-{i}")).collect();
    for (id, (m, d)) in ids.iter().zip(&c.dues) {
        sim.invoice_due(id, "ana", &format!("2026-{m:02}-{d:02}"));
    }
    // Drive the dispatcher from one pending reminder to the next until none is left.
    let mut rounds = 0;
    loop {
        let next = ids
            .iter()
            .filter_map(|i| sim.pending(i))
            .map(|r| r.fire_at)
            .min();
        let Some(at) = next else { break };
        sim.at_ts(at.max(sim.now())).await;
        rounds += 1;
        prop_assert!(rounds < 500, "the chase does not end: {c:?}");
    }
    // None lost: every step of every invoice ended sent or skipped.
    let policy = sim.policy.current();
    let p = &policy.policy;
    let last = u32::try_from(c.offsets.len() - 1).unwrap();
    let client = sim.client_record("ana");
    let zone = TimeZone::get(zone_name).unwrap();
    let mut sends: Vec<(Timestamp, String)> = Vec::new();
    for id in &ids {
        let inv = sim.inv(id);
        prop_assert_eq!(
            inv.cursor,
            Some(last),
            "{} not finished: {:#?}",
            id,
            sim.timeline(id)
        );
        let rules = ContactRules::for_client(p, &client, segment_followed(p, &client, &inv));
        for line in sim.timeline(id) {
            if line.outcome == AttemptOutcome::Sent {
                let local = line.at.to_zoned(zone.clone());
                prop_assert!(
                    rules.is_allowed(&local),
                    "{} sent at {} which is closed: {:?}",
                    id,
                    local,
                    rules.closed(&local)
                );
                // A reminder sent inside another invoice's message is that message.
                if !plazo::compliance::caps::is_grouped_inclusion(&line) {
                    sends.push((line.at, id.clone()));
                }
            }
            if line.outcome == AttemptOutcome::Skipped {
                prop_assert!(line.detail.is_some(), "a skip without a reason: {line:?}");
            }
        }
    }
    sends.sort();
    // Caps: Colombia one a day (local); Chile two in 7 days, 2 days apart.
    match country {
        "CO" => {
            let mut per_day: BTreeMap<jiff::civil::Date, usize> = BTreeMap::new();
            for (at, _) in &sends {
                *per_day.entry(at.to_zoned(zone.clone()).date()).or_default() += 1;
            }
            prop_assert!(per_day.values().all(|n| *n <= 1), "{per_day:?}");
        }
        "CL" => {
            for w in sends.windows(2) {
                prop_assert!(
                    w[1].0.duration_since(w[0].0) >= SignedDuration::from_hours(48),
                    "two messages less than 2 days apart: {w:?}"
                );
            }
            for (i, (at, _)) in sends.iter().enumerate() {
                let in_week = sends[..=i]
                    .iter()
                    .filter(|(t, _)| at.duration_since(*t) < SignedDuration::from_hours(7 * 24))
                    .count();
                prop_assert!(in_week <= 2, "more than 2 in 7 days ending {at}: {sends:?}");
            }
        }
        _ => {}
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn no_send_outside_the_rules_and_none_lost(c in case()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run_case(c))?;
    }
}

// ------------------------------------------------------------------ max_late

fn with_max_late(policy: String, max_late: &str) -> String {
    policy.replacen(
        "send_at = \"09:00\"\n",
        &format!("send_at = \"09:00\"\nmax_late = \"{max_late}\"\n"),
        1,
    )
}

#[tokio::test]
async fn an_invoice_put_in_after_its_due_date_does_not_get_due_today() {
    // The cadence: "due today" on the due date, a firm reminder ten days later.
    let policy = test_policy(
        "America/Bogota",
        "es",
        ("00:00", "24:00"),
        &["c"],
        &[
            step("c", "due_today", "0d", None, &["email"]),
            step("c", "firm_overdue", "+10d", None, &["email"]),
        ],
    );
    // Put in on 4 December, due 1 December: without max_late the catch-up sends "due today".
    let sim = Sim::new(&policy, "2026-12-04T15:00:00Z");
    sim.client(
        "ana",
        serde_json::json!({"name": "Ana", "email": "ana@example.co"}),
    );
    assert_eq!(
        sim.invoice_due("inv-1", "ana", "2026-12-01"),
        Some(ts("2026-12-04T15:00:00Z"))
    );
    // With max_late = 1d it is skipped with the reason, and the firm reminder is next.
    let sim = Sim::new(&with_max_late(policy, "1d"), "2026-12-04T15:00:00Z");
    sim.client(
        "ana",
        serde_json::json!({"name": "Ana", "email": "ana@example.co"}),
    );
    assert_eq!(
        sim.invoice_due("inv-1", "ana", "2026-12-01"),
        Some(ts("2026-12-11T14:00:00Z"))
    );
    let skipped = sim.lines_with(
        "inv-1",
        "not sent: its time was 2026-12-01 09:00 America/Bogota, more than its max_late (1d) ago",
    );
    assert_eq!(skipped.len(), 1, "{:#?}", sim.timeline("inv-1"));
    assert_eq!(skipped[0].step.as_deref(), Some("due_today"));
    assert_eq!(sim.at("2026-12-04T16:00:00Z").await, 0);
    assert_eq!(sim.at("2026-12-11T14:00:00Z").await, 1);
    assert_eq!(sim.emailed_steps(), ["firm_overdue"]);
}

#[tokio::test]
async fn a_reminder_held_back_past_max_late_is_skipped_not_sent_late() {
    // Colombia's one contact a day spreads three invoices over three days; with max_late = 1d
    // the third would be 46 hours late, so it is skipped with the reason instead.
    let sim = Sim::new(
        &with_max_late(colombian_policy(), "1d"),
        "2026-12-07T13:00:00Z",
    );
    ana_with(&sim, &["inv-a", "inv-b", "inv-c"], "2026-12-09");
    assert_eq!(sim.at("2026-12-09T14:00:00Z").await, 3);
    assert_eq!(sim.at("2026-12-10T12:00:00Z").await, 2);
    assert_eq!(sim.emailed_steps().len(), 2);
    assert_eq!(sim.at("2026-12-11T12:00:00Z").await, 1);
    assert_eq!(
        sim.emailed_steps().len(),
        2,
        "the third is not sent 46 hours late"
    );
    let skipped: Vec<_> = ["inv-a", "inv-b", "inv-c"]
        .into_iter()
        .flat_map(|i| {
            sim.lines_with(
                i,
                "not sent: it was due 2026-12-09 09:00 America/Bogota, more than its max_late (1d) ago",
            )
        })
        .collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].outcome, AttemptOutcome::Skipped);
    for inv in ["inv-a", "inv-b", "inv-c"] {
        assert!(sim.pending(inv).is_none(), "{inv} still pending");
    }
}

// ------------------------------------------------------------------ end to end

const TOKEN: &str = "compliance-test-token-0001";

/// The daemon in-process (HTTP API, real dispatcher, manual clock) sending email to a real SMTP
/// server on loopback, one message a day per client: two invoices due the same day arrive as
/// one email listing both; an invoice put in later that day is held by the Colombian cap until
/// the next morning (its timeline says so), when it arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_smtp_one_grouped_email_and_a_later_invoice_deferred_by_the_colombian_cap() {
    use common::inproc::{InProcess, request, start_in_process};
    let smtp = std::sync::Arc::new(common::SmtpServer::start());
    let dir = tempfile::tempdir().unwrap();
    let channels = format!(
        "[routes]\nemail = \"smtp\"\n\n[channels.smtp]\ntype = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\nfrom = \"Cartera Tornillo <cartera@tornillo.example.co>\"\n",
        smtp.addr.port()
    );
    let (running, clock) = start_in_process(
        dir.path(),
        InProcess {
            policy: &grouped(colombian_policy()),
            token: TOKEN,
            top: "",
            tables: "",
            // Monday 7 December 2026, 08:00 Bogotá.
            now: "2026-12-07T13:00:00Z",
            channels: &channels,
        },
    )
    .await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", running.addr);
    let auth = format!("Bearer {TOKEN}");
    let call = |method: &'static str, path: String, body: Option<serde_json::Value>| {
        let (http, base, auth) = (http.clone(), base.clone(), auth.clone());
        async move {
            let body = body.map(|b| b.to_string());
            request(&http, &base, method, &path, Some(&auth), body.as_deref()).await
        }
    };
    let (st, v) = call(
        "PUT",
        "/v1/clients/ana".into(),
        Some(
            serde_json::json!({"name": "Ana Gómez", "email": "ana@cliente.example.co",
                                 "country": "CO", "timezone": "America/Bogota"}),
        ),
    )
    .await;
    assert!((200..300).contains(&st), "{st} {v}");
    let put_invoice = |inv: &'static str| {
        call(
            "PUT",
            format!("/v1/invoices/{inv}"),
            Some(
                serde_json::json!({"client_id": "ana", "number": format!("FV-{inv}"),
                                     "currency": "COP", "amount": "1250000", "due_at": "2026-12-09",
                                     "payment_url": format!("https://pagos.example.co/{inv}")}),
            ),
        )
    };
    for inv in ["inv-1", "inv-2"] {
        let (st, v) = put_invoice(inv).await;
        assert_eq!(st, 201, "{v}");
    }
    let wait_mails = |n: usize| {
        let s = smtp.clone();
        tokio::task::spawn_blocking(move || s.wait_for(n, std::time::Duration::from_secs(15)))
    };
    // Wednesday 09:00 Bogotá: both are due; one email lists both, each with its payment link.
    clock.set(ts("2026-12-09T14:00:00Z"));
    running.wake_dispatcher();
    let mails = wait_mails(1).await.unwrap();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, ["ana@cliente.example.co"]);
    let text = common::decode_mail_text(&mails[0].data);
    for inv in ["inv-1", "inv-2"] {
        assert!(text.contains(&format!("FV-{inv}")), "{text}");
        assert!(
            text.contains(&format!("https://pagos.example.co/{inv}")),
            "{text}"
        );
    }
    // Both timelines record that email.
    let timeline_of = |inv: &'static str| {
        let c = call("GET", format!("/v1/invoices/{inv}"), None);
        async move { c.await.1.to_string() }
    };
    let end = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !(timeline_of("inv-1")
        .await
        .contains("in the grouped statement")
        || timeline_of("inv-2")
            .await
            .contains("in the grouped statement"))
    {
        assert!(
            std::time::Instant::now() < end,
            "no grouped line on either timeline"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // 10:00 Bogotá: a third invoice, due today, arrives after today's message.
    clock.set(ts("2026-12-09T15:00:00Z"));
    let (st, v) = put_invoice("inv-3").await;
    assert_eq!(st, 201, "{v}");
    running.wake_dispatcher();
    let deferred =
        "deferred: co_ley_2300 allows 1 contact a day; next 2026-12-10 07:00 America/Bogota";
    let end = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let v = loop {
        let (_, v) = call("GET", "/v1/invoices/inv-3".into(), None).await;
        if v.to_string().contains(deferred) {
            break v;
        }
        assert!(std::time::Instant::now() < end, "inv-3 not deferred: {v:#}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        v["next_reminder"]["fire_at"], "2026-12-10T12:00:00Z",
        "{v:#}"
    );
    assert_eq!(smtp.mails().len(), 1, "still one email on Wednesday");
    // Thursday 07:00 Bogotá: it arrives.
    clock.set(ts("2026-12-10T12:00:00Z"));
    running.wake_dispatcher();
    let mails = wait_mails(2).await.unwrap();
    assert_eq!(mails.len(), 2);
    assert!(common::decode_mail_text(&mails[1].data).contains("FV-inv-3"));
    running.shutdown().await.unwrap();
}

/// `policy` with its segment `c` sending one message a day per client.
fn grouped(policy: String) -> String {
    policy.replacen(
        "[segments.c]\ncadence = \"c\"\n",
        "[segments.c]\ncadence = \"c\"\ngroup = \"client\"\n",
        1,
    )
}

// ------------------------------------------------------------------ grouped statements

#[tokio::test]
async fn grouped_by_client_three_invoices_due_the_same_day_make_one_message() {
    let mut policy = grouped(test_policy(
        "America/Bogota",
        "es",
        ("00:00", "24:00"),
        &["c"],
        &[
            step("c", "due_today", "0d", None, &["email"]),
            step("c", "friendly_overdue", "+1d", None, &["email"]),
        ],
    ));
    policy.push_str(BY_COUNTRY);
    let sim = Sim::new(&policy, "2026-12-07T13:00:00Z");
    ana_with(&sim, &["inv-a", "inv-b", "inv-c"], "2026-12-09");
    assert_eq!(sim.at("2026-12-09T14:00:00Z").await, 3);
    // One email, listing the other two invoices.
    let sent = sim.email.sent();
    assert_eq!(sent.len(), 1);
    let first = sent[0].invoice_id.as_str().to_owned();
    for inv in ["inv-a", "inv-b", "inv-c"] {
        if inv != first {
            assert!(
                sent[0].text.contains(&format!("FV-{inv}")),
                "{}",
                sent[0].text
            );
        }
    }
    // The other two are recorded as sent in it, not deferred by the one-a-day cap.
    for inv in ["inv-a", "inv-b", "inv-c"] {
        let lines = sim.outcomes(inv, AttemptOutcome::Sent);
        assert_eq!(lines.len(), 1, "{inv}: {:#?}", sim.timeline(inv));
        if inv != first {
            let d = lines[0].detail.as_deref().unwrap_or("");
            assert_eq!(
                d,
                format!(
                    "in the grouped statement sent for {first} at 2026-12-09 09:00 America/Bogota"
                ),
                "{inv}"
            );
            assert_eq!(lines[0].channel.as_deref(), Some("email"));
        }
        assert!(sim.lines_with(inv, "deferred").is_empty(), "{inv}");
    }
    // The next day's step: again one message for the three (counted once against the cap).
    assert_eq!(sim.at("2026-12-10T14:00:00Z").await, 3);
    assert_eq!(sim.email.sent().len(), 2);
    for inv in ["inv-a", "inv-b", "inv-c"] {
        assert_eq!(sim.outcomes(inv, AttemptOutcome::Sent).len(), 2, "{inv}");
        assert!(sim.pending(inv).is_none(), "{inv} still pending");
    }
}

// ------------------------------------------------------------------ calls

#[tokio::test]
async fn a_call_is_a_contact_chiles_one_call_a_week_holds_the_second_claim() {
    use plazo::service::{ClaimInput, OutcomeInput, claim_task, task_outcome};
    let call = "[[cadences.c.steps]]\nname = \"call\"\noffset = \"+1d\"\nchannels = [\"call\"]\n\n";
    let mut policy = test_policy(
        "America/Santiago",
        "es",
        ("00:00", "24:00"),
        &["c"],
        &[call.to_owned()],
    );
    policy.push_str(BY_COUNTRY);
    // Monday 7 December 2026, 08:00 Santiago (UTC-3).
    let sim = Sim::new(&policy, "2026-12-07T11:00:00Z");
    sim.client(
        "rosa",
        serde_json::json!({"name": "Rosa", "email": "rosa@example.cl", "phone": "+56961234567",
                           "country": "CL", "timezone": "America/Santiago"}),
    );
    sim.invoice_due("inv-1", "rosa", "2026-12-06");
    sim.invoice_due("inv-2", "rosa", "2026-12-07");
    // Monday 09:00: the first call task opens; the agent reaches Rosa.
    sim.at("2026-12-07T12:00:00Z").await;
    let p = sim.policy.current();
    let tasks = sim.store.live_tasks().unwrap();
    assert_eq!(tasks.len(), 1, "{:#?}", sim.timeline("inv-1"));
    let agent = || ClaimInput {
        agent: "luis".into(),
    };
    claim_task(&sim.store, &p.policy, &tasks[0].id, agent(), sim.now()).unwrap();
    let reached: OutcomeInput =
        serde_json::from_value(serde_json::json!({"result": "reached", "agent": "luis"})).unwrap();
    task_outcome(&sim.store, &p.policy, &tasks[0].id, reached, sim.now()).unwrap();
    // The second invoice's call falls on Tuesday 8 December, a Chilean holiday: its task opens
    // on Wednesday 08:00, but Chile allows one call a week.
    assert_eq!(sim.at("2026-12-08T12:00:00Z").await, 0);
    sim.at("2026-12-09T11:00:00Z").await;
    let tasks = sim.store.live_tasks().unwrap();
    assert_eq!(tasks.len(), 1, "{:#?}", sim.timeline("inv-2"));
    let err = claim_task(&sim.store, &p.policy, &tasks[0].id, agent(), sim.now())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a call is a contact: cl_ley_21320 allows 1 call contact in 7 days; it may be made from 2026-12-14 09:00 America/Santiago"),
        "{err}"
    );
    // A week after the first call it may be claimed.
    sim.set("2026-12-14T12:00:00Z");
    claim_task(&sim.store, &p.policy, &tasks[0].id, agent(), sim.now()).unwrap();
}

// ------------------------------------------------------------------ the debtor's own times

#[tokio::test]
async fn a_debtors_blocked_times_hold_a_reminder_and_bad_ones_are_refused() {
    let sim = Sim::new(&colombian_policy(), "2026-12-07T13:00:00Z");
    let p = sim.policy.current();
    for (bad, want) in [
        (
            serde_json::json!([{"days": "weekdays", "from": "08:00", "to": "10:00"}]),
            "blocked_times[0].days: \"weekdays\" is not a set of days",
        ),
        (
            serde_json::json!([{"days": "mon-fri", "from": "10:00", "to": "09:00"}]),
            "blocked_times[0]: from \"10:00\" to \"09:00\" is not a time span",
        ),
        (
            serde_json::json!([{"days": "mon-fri", "from": "8", "to": "09:00"}]),
            "is not a time span",
        ),
    ] {
        let input: plazo::service::ClientInput = serde_json::from_value(serde_json::json!({
            "name": "Ana", "email": "ana@example.co", "country": "CO", "blocked_times": bad
        }))
        .unwrap();
        let err = plazo::service::upsert_client(
            &sim.store,
            &p.policy,
            &ClientId::new("ana").unwrap(),
            input,
            sim.now(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(want), "{err}");
    }
    assert!(
        sim.store
            .client(&ClientId::new("ana").unwrap())
            .unwrap()
            .is_none()
    );
    // Ana asked not to be called before 10:00 on weekdays: the 09:00 reminder waits.
    sim.client(
        "ana",
        serde_json::json!({"name": "Ana", "email": "ana@example.co", "country": "CO",
                           "blocked_times": [{"days": " MON-FRI ", "from": "00:00", "to": "10:00"}]}),
    );
    let stored = sim.client_record("ana");
    assert_eq!(stored.blocked_times[0].days, "mon-fri");
    // Due Wednesday 9 December: planned at 10:00 Bogotá (15:00Z), not 09:00.
    assert_eq!(
        sim.invoice_due("inv-1", "ana", "2026-12-09"),
        Some(ts("2026-12-09T15:00:00Z"))
    );
    let plan_reason = plazo::compliance::rules::ContactRules::for_client(
        &p.policy,
        &stored,
        &p.policy.segments["c"],
    )
    .closed(&ts("2026-12-09T14:00:00Z").to_zoned(TimeZone::get("America/Bogota").unwrap()))
    .unwrap()
    .to_string();
    assert_eq!(
        plan_reason,
        "the debtor asked not to be contacted then (allowed: Wed 10:00–24:00)"
    );
    assert_eq!(sim.at("2026-12-09T14:00:00Z").await, 0);
    assert_eq!(sim.at("2026-12-09T15:00:00Z").await, 1);
    assert_eq!(sim.emailed_steps(), ["due_today"]);
}
