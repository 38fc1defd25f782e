//! Passes over every client, under a manual clock: the daily re-evaluation of segment rules
//! (`resegment_all`: a rule on `invoice.days_overdue` starts matching with time alone, the
//! invoice moves once, with a timeline line naming the rule, nothing is sent twice, and the
//! invoices that stay put are not written), and the facts backfill (`rebuild_facts`,
//! `backfill_facts_once`: clients whose ledger is empty although they paid get the facts
//! their invoices give, once per data directory), also on a data directory written before
//! plazo kept facts (the schema-2 fixture).

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests may read the real clock

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use common::sim::{Sim, ts};
use common::{email_step, test_policy};
use plazo::domain::{
    AttemptOutcome, Client, ClientId, FactsLedger, InvoiceId, InvoiceStatus, behaviour_of,
};
use plazo::policy::parse_policy;
use plazo::service::{
    FACTS_BACKFILL_MARKER, RebuildReport, ResegmentReport, backfill_facts_once, rebuild_facts,
    resegment_all,
};
use plazo::store::{Store, StoreOptions, TxError};

/// Bogotá (UTC-5), send_at 09:00 local (14:00Z), window 08:00-19:00 every day. Segments
/// `standard` (the default) and `atrasado`, chosen by `rule` (none when empty).
fn policy(rule: &str) -> String {
    let mut p = test_policy(
        "America/Bogota",
        "es",
        ("08:00", "19:00"),
        &["standard", "atrasado"],
        &[
            email_step("standard", "due_today", "0d", "due_today", "friendly"),
            email_step(
                "standard",
                "friendly_overdue",
                "+3d",
                "friendly_overdue",
                "friendly",
            ),
            email_step("standard", "firm_overdue", "+10d", "firm_overdue", "firm"),
            email_step("standard", "final_notice", "+30d", "final_notice", "final"),
            email_step("atrasado", "late_call", "+15d", "firm_overdue", "firm"),
            email_step("atrasado", "late_final", "+25d", "final_notice", "final"),
            email_step("atrasado", "late_last", "+40d", "final_notice", "final"),
            email_step(
                "promise",
                "promise_tomorrow",
                "-1d",
                "promise_reminder",
                "friendly",
            ),
        ],
    );
    if !rule.is_empty() {
        p = p.replacen(
            "[segments.atrasado]\ncadence = \"atrasado\"\n",
            &format!("[segments.atrasado]\ncadence = \"atrasado\"\nwhen = \"{rule}\"\n"),
            1,
        );
    }
    p.push_str("[promises]\ncadence = \"promise\"\ngrace = \"1d\"\nmax_days = 30\n");
    p
}

fn client(sim: &Sim, id: &str) {
    sim.client(
        id,
        serde_json::json!({"name": format!("Cliente {id}"), "email": format!("{id}@cliente.example.co"),
                           "timezone": "America/Bogota", "country": "CO"}),
    );
}

/// `(invoice, step)` of every email sent, sorted.
fn sent(sim: &Sim) -> Vec<(String, String)> {
    let mut got: Vec<_> = sim
        .email
        .sent()
        .into_iter()
        .map(|o| (o.invoice_id.to_string(), o.step))
        .collect();
    got.sort();
    got
}

/// Keys written by the store so far.
fn writes(sim: &Sim) -> u64 {
    sim.store.writer_stats().unwrap().writes
}

/// Runs the daily re-evaluation with the policy in force, as of the clock.
fn resegment(sim: &Sim) -> ResegmentReport {
    let p = sim.policy.current();
    resegment_all(&sim.store, &p.policy, sim.now()).unwrap()
}

/// Dispatches at 09:00 Bogotá (14:00Z) of every day from `from` to `to` (inclusive), running
/// the re-evaluation at 00:30 Bogotá (05:30Z, the default `[housekeeping] resegment`) of the
/// days in `resegment_on` first; returns the re-evaluations' reports.
async fn days(sim: &Sim, from: &str, to: &str, resegment_on: &[&str]) -> Vec<ResegmentReport> {
    let mut reports = Vec::new();
    let mut day: jiff::civil::Date = from.parse().unwrap();
    let last: jiff::civil::Date = to.parse().unwrap();
    while day <= last {
        if resegment_on.contains(&day.to_string().as_str()) {
            sim.set(&format!("{day}T05:30:00Z"));
            reports.push(resegment(sim));
        }
        sim.at(&format!("{day}T14:00:00Z")).await;
        day = day.tomorrow().unwrap();
    }
    reports
}

#[tokio::test]
async fn an_invoice_moves_once_its_days_overdue_pass_the_rule_and_the_others_are_not_written() {
    let rule = "invoice.days_overdue > 20";
    let sim = Sim::new(&policy(rule), "2026-03-01T12:00:00Z");
    client(&sim, "cli-1");
    client(&sim, "cli-2");
    client(&sim, "cli-3"); // no invoice
    sim.invoice("inv-late", "cli-1", "2026-03-02", "1000000");
    sim.invoice("inv-fresh", "cli-1", "2026-03-25", "2000000");
    sim.invoice("inv-other", "cli-2", "2026-03-20", "3000000");
    for id in ["inv-late", "inv-fresh", "inv-other"] {
        assert_eq!(sim.inv(id).followed.unwrap().segment, "standard", "{id}");
    }

    // Up to 03-21, nothing is 21 days overdue: the pass looks at every client and writes
    // nothing at all.
    days(&sim, "2026-03-02", "2026-03-21", &[]).await;
    sim.set("2026-03-22T05:30:00Z");
    let before = writes(&sim);
    let r = resegment(&sim);
    assert_eq!(
        r,
        ResegmentReport {
            clients: 3,
            clients_changed: 0,
            invoices_moved: 0,
            invoices_written_off: 0,
            completed: true
        }
    );
    assert_eq!(
        writes(&sim),
        before,
        "a pass that moves nothing writes nothing"
    );

    // 03-23 in Bogotá: inv-late is 21 days overdue. Only it moves; the client's other invoice
    // and the other client's stay as they were, not even rewritten.
    let fresh = sim.inv("inv-fresh");
    let other = sim.inv("inv-other");
    let fresh_timeline = sim.timeline("inv-fresh");
    let other_timeline = sim.timeline("inv-other");
    let cli1 = sim.client_record("cli-1");
    sim.set("2026-03-23T05:30:00Z");
    let r = resegment(&sim);
    assert_eq!(
        r,
        ResegmentReport {
            clients: 3,
            clients_changed: 1,
            invoices_moved: 1,
            invoices_written_off: 0,
            completed: true
        }
    );
    let late = sim.inv("inv-late");
    assert_eq!(late.followed.as_ref().unwrap().segment, "atrasado");
    assert_eq!(late.updated_at, ts("2026-03-23T05:30:00Z"));
    let moved = sim.lines_with("inv-late", "moved from segment standard");
    assert_eq!(moved.len(), 1, "{moved:?}");
    let line = moved[0].detail.clone().unwrap();
    assert!(
        line.contains("to segment atrasado (cadence atrasado)"),
        "{line}"
    );
    assert!(line.contains(&format!("rule `{rule}` matches")), "{line}");
    assert_eq!(moved[0].at, ts("2026-03-23T05:30:00Z"));
    // late_call (+15d, 03-17) had passed: skipped with the reason, never sent late.
    let skipped = sim.lines_with("inv-late", "before the client moved to segment atrasado");
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].step.as_deref(), Some("late_call"));
    assert_eq!(skipped[0].outcome, AttemptOutcome::Skipped);
    let next = sim.pending("inv-late").unwrap();
    assert_eq!(
        (next.step_name.as_str(), next.fire_at),
        ("late_final", ts("2026-03-27T14:00:00Z"))
    );

    assert_eq!(sim.inv("inv-fresh"), fresh, "not moved, not rewritten");
    assert_eq!(sim.inv("inv-other"), other, "not moved, not rewritten");
    assert_eq!(sim.timeline("inv-fresh"), fresh_timeline);
    assert_eq!(sim.timeline("inv-other"), other_timeline);
    assert_eq!(
        sim.client_record("cli-1"),
        cli1,
        "the client is not written"
    );

    // The next days' passes find nothing more to move (inv-other turns 21 days overdue only
    // on 04-10); every step goes out once, the standard cadence's final notice of inv-late
    // (04-01) never.
    sim.at("2026-03-23T14:00:00Z").await;
    let reports = days(
        &sim,
        "2026-03-24",
        "2026-04-09",
        &["2026-03-24", "2026-04-01", "2026-04-09"],
    )
    .await;
    assert!(
        reports.iter().all(|r| r.invoices_moved == 0 && r.completed),
        "{reports:?}"
    );
    let want: Vec<(String, String)> = {
        let mut w: Vec<(String, String)> = [
            ("inv-late", "due_today"),
            ("inv-late", "friendly_overdue"),
            ("inv-late", "firm_overdue"),
            ("inv-late", "late_final"),
            ("inv-other", "due_today"),
            ("inv-other", "friendly_overdue"),
            ("inv-other", "firm_overdue"),
            ("inv-fresh", "due_today"),
            ("inv-fresh", "friendly_overdue"),
            ("inv-fresh", "firm_overdue"),
        ]
        .iter()
        .map(|(i, s)| (i.to_string(), s.to_string()))
        .collect();
        w.sort();
        w
    };
    assert_eq!(sent(&sim), want, "each step once, nothing twice");

    // 04-10: inv-other is 21 days overdue and moves too: its standard final notice (04-19)
    // is never sent, the new cadence's late_call (04-04) is skipped, its later steps go out.
    // inv-fresh, not re-evaluated by a pass after 04-11 here, keeps its standard cadence
    // until its final notice (04-24) is sent; planning its next step then chooses its
    // segment again (30 days overdue) and it moves, its passed steps skipped: late_last
    // (05-04) goes out.
    let reports = days(
        &sim,
        "2026-04-10",
        "2026-05-15",
        &["2026-04-10", "2026-04-11"],
    )
    .await;
    assert_eq!(
        reports.iter().map(|r| r.invoices_moved).collect::<Vec<_>>(),
        vec![1, 0]
    );
    assert_eq!(sim.inv("inv-other").followed.unwrap().segment, "atrasado");
    let skipped = sim.lines_with("inv-other", "before the client moved to segment atrasado");
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].step.as_deref(), Some("late_call"));
    let mut more = want.clone();
    for (i, s) in [
        ("inv-late", "late_last"),
        ("inv-other", "late_final"),
        ("inv-other", "late_last"),
        ("inv-fresh", "final_notice"),
        ("inv-fresh", "late_last"),
    ] {
        more.push((i.to_owned(), s.to_owned()));
    }
    more.sort();
    assert_eq!(sent(&sim), more, "each step once, nothing twice");
    assert_eq!(
        sim.lines_with("inv-fresh", "moved from segment standard")[0].at,
        ts("2026-04-24T14:00:00Z")
    );
}

#[tokio::test]
async fn without_rules_the_pass_does_nothing() {
    let sim = Sim::new(&policy(""), "2026-03-01T12:00:00Z");
    client(&sim, "cli-1");
    sim.invoice("inv-1", "cli-1", "2026-01-02", "1000000");
    let before = writes(&sim);
    let r = resegment(&sim);
    assert_eq!(
        r,
        ResegmentReport {
            clients: 0,
            clients_changed: 0,
            invoices_moved: 0,
            invoices_written_off: 0,
            completed: true
        }
    );
    assert_eq!(writes(&sim), before);
}

/// The pass pages through more clients than a page holds, each once, and moves the invoice
/// of a client on a later page.
#[tokio::test]
async fn the_pass_sees_every_client_across_pages() {
    let sim = Sim::new(&policy("invoice.days_overdue > 20"), "2026-03-01T12:00:00Z");
    let n = plazo::service::CLIENT_PAGE * 2 + 3;
    client(&sim, "c-0000");
    let template = sim.client_record("c-0000");
    sim.store
        .transaction(|tx| {
            for i in 1..n {
                let c = plazo::domain::Client {
                    id: ClientId::new(format!("c-{i:04}")).unwrap(),
                    ..template.clone()
                };
                tx.put_client(&c)?;
            }
            Ok::<_, TxError<()>>(())
        })
        .unwrap()
        .unwrap();
    // 19 days overdue when created (Bogotá), 21 when the pass runs.
    sim.invoice("inv-1", &format!("c-{:04}", n - 2), "2026-02-10", "1000000");
    assert_eq!(sim.inv("inv-1").followed.unwrap().segment, "standard");
    sim.set("2026-03-03T05:30:00Z");
    let r = resegment(&sim);
    assert_eq!(
        r,
        ResegmentReport {
            clients: n as u64,
            clients_changed: 1,
            invoices_moved: 1,
            invoices_written_off: 0,
            completed: true
        }
    );
    assert_eq!(sim.inv("inv-1").followed.unwrap().segment, "atrasado");
}

/// Empties the ledger of client `id`, as a client stored before plazo kept facts (record
/// layout version 1) reads back.
fn forget_facts(store: &Store, id: &str) {
    let id = ClientId::new(id).unwrap();
    store
        .transaction(|tx| {
            let mut c = tx.client(&id)?.unwrap();
            c.facts = FactsLedger::default();
            tx.put_client(&c)?;
            Ok::<_, TxError<()>>(())
        })
        .unwrap()
        .unwrap();
}

/// A client that paid two invoices (one 8 days late, one before its due date, keeping a
/// promise) and has one open; another that paid nothing. Returns the first's ledger as kept by plazo.
fn paid_history(sim: &Sim) -> FactsLedger {
    client(sim, "cli-1");
    client(sim, "cli-2");
    sim.invoice("inv-a", "cli-1", "2026-03-02", "500000");
    sim.invoice("inv-b", "cli-1", "2026-03-15", "700000");
    sim.invoice("inv-c", "cli-1", "2026-04-20", "900000");
    sim.invoice("inv-d", "cli-2", "2026-04-20", "100000");
    sim.set("2026-03-10T15:00:00Z");
    sim.pay_in_full("inv-a", "tx-a");
    sim.promise("inv-b", "700000", "2026-03-14");
    sim.set("2026-03-13T15:00:00Z");
    sim.pay_in_full("inv-b", "tx-b");
    let ledger = sim.client_record("cli-1").facts;
    let facts = behaviour_of(&sim.client_record("cli-1"), 12, sim.now());
    assert_eq!(
        (
            facts.paid_invoices,
            facts.max_days_late,
            facts.paid_late,
            facts.promises_kept
        ),
        (2, 8, 1, 1),
        "{facts:?}"
    );
    ledger
}

#[tokio::test]
async fn rebuild_gives_an_empty_ledger_the_facts_of_the_invoices_once() {
    let sim = Sim::new(&policy(""), "2026-03-01T12:00:00Z");
    let kept = paid_history(&sim);
    forget_facts(&sim.store, "cli-1");
    let blank = sim.client_record("cli-1");
    assert_eq!(behaviour_of(&blank, 12, sim.now()).paid_invoices, 0);

    sim.set("2026-03-20T12:00:00Z");
    let p = sim.policy.current();
    let r = rebuild_facts(&sim.store, &p.policy, sim.now()).unwrap();
    assert_eq!(
        r,
        RebuildReport {
            clients: 2,
            rewritten: 1,
            invoices_moved: 0,
            completed: true
        }
    );
    let rebuilt = sim.client_record("cli-1");
    assert_eq!(rebuilt.facts, kept, "the ledger plazo had kept");
    let facts = behaviour_of(&rebuilt, 12, sim.now());
    assert_eq!(facts.paid_invoices, 2);
    assert_eq!(facts.considered, 2);
    assert_eq!(facts.paid_late, 1);
    assert_eq!(facts.max_days_late, 8);
    assert_eq!(facts.avg_days_late, 4.0);
    assert_eq!(facts.promises_kept, 1);
    assert_eq!(facts.last_payment_at, Some(ts("2026-03-13T15:00:00Z")));
    assert_eq!(rebuilt.updated_at, ts("2026-03-20T12:00:00Z"));
    assert_eq!(
        without_facts(&rebuilt),
        without_facts(&blank),
        "only the facts (and updated_at) change"
    );

    // Again: nothing differs, nothing is written.
    let before = sim.store.writer_stats().unwrap().writes;
    sim.set("2026-03-21T12:00:00Z");
    let r = rebuild_facts(&sim.store, &p.policy, sim.now()).unwrap();
    assert_eq!((r.clients, r.rewritten, r.completed), (2, 0, true));
    assert_eq!(sim.store.writer_stats().unwrap().writes, before);
    assert_eq!(sim.client_record("cli-1"), rebuilt);
}

/// `c` apart from what the rebuild changes (its facts, `updated_at`).
fn without_facts(c: &Client) -> Client {
    Client {
        facts: FactsLedger::default(),
        updated_at: c.created_at,
        ..c.clone()
    }
}

#[tokio::test]
async fn rebuilt_facts_move_the_clients_open_invoices_when_a_rule_now_matches() {
    let sim = Sim::new(&policy(""), "2026-03-01T12:00:00Z");
    paid_history(&sim);
    forget_facts(&sim.store, "cli-1");
    // The rule arrives with a reload; with an empty ledger it matches nothing yet.
    let path = sim.dir.path().join("policy-rules.toml");
    let text = policy("client.facts.max_days_late > 5");
    std::fs::write(&path, &text).unwrap();
    sim.policy.replace(parse_policy(&text, &path).unwrap());
    assert_eq!(resegment(&sim).invoices_moved, 0);
    assert_eq!(sim.inv("inv-c").followed.unwrap().segment, "standard");

    sim.set("2026-03-20T12:00:00Z");
    let p = sim.policy.current();
    let r = rebuild_facts(&sim.store, &p.policy, sim.now()).unwrap();
    assert_eq!((r.rewritten, r.invoices_moved), (1, 1), "{r:?}");
    assert_eq!(sim.inv("inv-c").followed.unwrap().segment, "atrasado");
    assert_eq!(sim.inv("inv-d").followed.unwrap().segment, "standard");
    let moved = sim.lines_with("inv-c", "moved from segment standard");
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert!(
        moved[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("rule `client.facts.max_days_late > 5` matches")
    );
    // Paid invoices are not touched.
    assert_eq!(sim.inv("inv-a").status, InvoiceStatus::Paid);
    assert!(sim.lines_with("inv-a", "moved from").is_empty());
}

/// A data directory created by this version never runs the backfill: every client in it was
/// written with its facts kept up to date, so a pass over all of them (which reads every
/// invoice of every client) would only cost its first start. The incremental upkeep owns the
/// facts from the start; a ledger emptied behind its back stays empty.
#[tokio::test]
async fn a_new_data_directory_never_runs_the_backfill() {
    let sim = Sim::new(&policy(""), "2026-03-01T12:00:00Z");
    paid_history(&sim);
    assert!(sim.store.meta(FACTS_BACKFILL_MARKER).unwrap().is_some());
    forget_facts(&sim.store, "cli-1");
    let p = sim.policy.current();
    assert_eq!(
        backfill_facts_once(&sim.store, &p.policy, sim.now(), &AtomicBool::new(false)).unwrap(),
        None
    );
    assert_eq!(sim.client_record("cli-1").facts, FactsLedger::default());
}

/// Unpacks the schema-2 fixture (written by release 89fda94, before plazo kept facts: every
/// client record has layout version 1) under `tmp`; returns the store directory.
fn unpack_schema2(tmp: &Path) -> std::path::PathBuf {
    let archive = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema2-store.tar.gz");
    let status = std::process::Command::new("tar")
        .arg("xzf")
        .arg(&archive)
        .arg("-C")
        .arg(tmp)
        .status()
        .unwrap();
    assert!(status.success(), "tar failed on {}", archive.display());
    tmp.join("schema2-store")
}

#[test]
fn the_backfill_gives_clients_written_before_facts_existed_their_facts() {
    if common::sled_only("a schema-2 sled directory") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = unpack_schema2(tmp.path());
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    let (c1, c2) = (ClientId::new("c-1").unwrap(), ClientId::new("c-2").unwrap());
    assert_eq!(
        store.client(&c2).unwrap().unwrap().facts,
        FactsLedger::default()
    );
    assert_eq!(
        store.client_ids_after(None, 10).unwrap(),
        vec![c1.clone(), c2.clone()]
    );

    let path = tmp.path().join("policy.toml");
    let text = policy("");
    std::fs::write(&path, &text).unwrap();
    let loaded = parse_policy(&text, &path).unwrap();
    let now = ts("2026-06-01T12:00:00Z");
    let never = AtomicBool::new(false);
    assert_eq!(store.meta(FACTS_BACKFILL_MARKER).unwrap(), None);

    // Stopped before its first client (a shutdown right after start): no marker, nothing
    // rebuilt; the next start runs it.
    let stopped = backfill_facts_once(&store, &loaded.policy, now, &AtomicBool::new(true))
        .unwrap()
        .unwrap();
    assert!(!stopped.completed);
    assert_eq!(stopped.rewritten, 0);
    assert_eq!(store.meta(FACTS_BACKFILL_MARKER).unwrap(), None);
    assert_eq!(
        store.client(&c2).unwrap().unwrap().facts,
        FactsLedger::default()
    );

    let r = backfill_facts_once(&store, &loaded.policy, now, &never)
        .unwrap()
        .unwrap();
    assert_eq!(
        r,
        RebuildReport {
            clients: 2,
            rewritten: 2,
            invoices_moved: 0,
            completed: true
        }
    );

    // c-2 (no zone of its own: the policy's, Bogotá) paid INV-1002, due 2026-03-01 12:00
    // local, on 03-02 05:00 local: one day late.
    let bare = store.client(&c2).unwrap().unwrap();
    let facts = behaviour_of(&bare, 12, now);
    assert_eq!(facts.paid_invoices, 1);
    assert_eq!(facts.paid_late, 1);
    assert_eq!(facts.max_days_late, 1);
    assert_eq!(
        facts
            .avg_ticket
            .get("USD")
            .map(ToString::to_string)
            .as_deref(),
        Some("99.9")
    );
    assert_eq!(facts.last_payment_at, Some(ts("2026-03-02T10:00:00Z")));
    // c-1 paid part of its open INV-1001 (a plan broke, a promise is still active): no paid
    // invoice, no promise kept, the last payment recorded.
    let full = store.client(&c1).unwrap().unwrap();
    let facts = behaviour_of(&full, 12, now);
    assert_eq!((facts.paid_invoices, facts.promises_kept), (0, 0));
    assert_eq!(
        facts.broken_promises, 3,
        "kept on the client record as it was"
    );
    assert_eq!(facts.last_payment_at, Some(ts("2026-04-01T15:04:05.5Z")));
    // Nothing else of the clients changed; the marker is set.
    assert_eq!(full.name, "María Pérez");
    assert_eq!(full.credits.len(), 2);
    assert!(store.meta(FACTS_BACKFILL_MARKER).unwrap().is_some());
    let again = plazo::service::rebuild_facts(&store, &loaded.policy, now).unwrap();
    assert_eq!((again.clients, again.rewritten), (2, 0));

    // The marker is durable: after a reopen the pass does not run again.
    store.close().unwrap();
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    assert!(store.meta(FACTS_BACKFILL_MARKER).unwrap().is_some());
    assert_eq!(
        backfill_facts_once(&store, &loaded.policy, ts("2026-07-01T00:00:00Z"), &never).unwrap(),
        None
    );
}

/// `[write_off] after_days = 60`: the daily pass writes off, in one command per client, the
/// open and handed-off invoices 60 days or more past due, and leaves alone the younger ones,
/// the paused ones and those under a promise. The handed-off one keeps its partner; a later
/// payment is a recovery; a second pass writes nothing.
#[tokio::test]
async fn the_daily_pass_writes_off_invoices_past_the_policys_age_and_nothing_else() {
    let mut text = policy("");
    text.push_str(
        "[partners.cobranzas_norte]\nname = \"Cobranzas del Norte S.A.S.\"\n\n[write_off]\nafter_days = 60\n",
    );
    let sim = Sim::new(&text, "2026-01-05T12:00:00Z");
    client(&sim, "cli-1");
    client(&sim, "cli-2");
    sim.invoice("inv-old", "cli-1", "2026-01-02", "1000000");
    sim.invoice("inv-young", "cli-1", "2026-01-20", "500000");
    sim.invoice("inv-paused", "cli-1", "2026-01-02", "700000");
    sim.invoice("inv-promised", "cli-2", "2026-01-02", "300000");
    sim.invoice("inv-agency", "cli-2", "2026-01-03", "900000");
    let p = sim.policy.current();
    plazo::service::pause_invoice(
        &sim.store,
        &p.policy,
        &InvoiceId::new("inv-paused").unwrap(),
        "dispute: goods returned".into(),
        None,
        sim.now(),
    )
    .unwrap();
    plazo::service::escalate_invoice(
        &sim.store,
        &p.policy,
        &InvoiceId::new("inv-agency").unwrap(),
        plazo::service::EscalationRequest::HandOff,
        plazo::service::EscalationInput {
            partner: None,
            reason: None,
        },
        sim.now(),
    )
    .unwrap();

    // 03-02 in Bogotá: inv-old is 59 days past due. Nothing yet, and nothing written.
    sim.set("2026-03-03T04:00:00Z");
    sim.promise("inv-promised", "300000", "2026-03-20");
    let before = writes(&sim);
    assert_eq!(resegment(&sim).invoices_written_off, 0);
    assert_eq!(writes(&sim), before, "nothing aged: nothing written");

    // 03-03 in Bogotá: 60 days for inv-old and inv-paused, 59 for inv-agency.
    sim.set("2026-03-03T05:30:00Z");
    let r = resegment(&sim);
    assert_eq!((r.invoices_written_off, r.clients_changed), (1, 1));
    let old = sim.inv("inv-old");
    assert_eq!(old.status, InvoiceStatus::WrittenOff);
    assert!(
        old.pending.is_none(),
        "no reminder left for a written-off invoice"
    );
    let line = sim.lines_with("inv-old", "written off").pop().unwrap();
    let detail = line.detail.clone().unwrap_or_default();
    assert!(detail.contains("60 days or more past due"), "{line:?}");
    assert!(detail.contains("[write_off] after_days"), "{line:?}");
    for (id, status) in [
        ("inv-young", InvoiceStatus::Open),
        ("inv-paused", InvoiceStatus::Open),
        ("inv-promised", InvoiceStatus::Open),
        ("inv-agency", InvoiceStatus::HandedOff),
    ] {
        assert_eq!(sim.inv(id).status, status, "{id}");
    }

    // A day later the handed-off invoice is 60 days past due too: written off, partner kept.
    sim.set("2026-03-04T05:30:00Z");
    let r = resegment(&sim);
    assert_eq!(r.invoices_written_off, 1);
    let agency = sim.inv("inv-agency");
    assert_eq!(agency.status, InvoiceStatus::WrittenOff);
    assert_eq!(
        agency.escalation.as_ref().unwrap().partner.as_deref(),
        Some("cobranzas_norte")
    );
    let before = writes(&sim);
    assert_eq!(resegment(&sim).invoices_written_off, 0);
    assert_eq!(writes(&sim), before, "a second pass writes nothing");

    // The debtor pays the written-off invoice after all: a recovery, the invoice is paid.
    sim.pay("inv-old", "1000000", "rec-1");
    let old = sim.inv("inv-old");
    assert_eq!(old.status, InvoiceStatus::Paid);
    assert_eq!(
        old.escalation.as_ref().unwrap().recovered,
        "1000000".parse().unwrap()
    );
}

#[test]
fn a_write_off_age_out_of_range_is_refused_with_its_place() {
    let base = policy("");
    let line = base.lines().count() + 3;
    let err = parse_policy(
        &format!("{base}\n[write_off]\nafter_days = 7\n"),
        Path::new("policy.toml"),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains(&format!("policy.toml:{line}:14"))
            && err.contains("write_off.after_days")
            && err.contains("30 to 3650"),
        "{err}"
    );
}
