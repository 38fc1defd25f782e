//! Property tests of `[payments] cadence_anchor`: with partial payments arriving between
//! steps, no step is skipped or sent twice, whichever anchor the policy picks; with
//! `"due_date"` every step goes out where the original due date puts it, with
//! `"last_payment"` the steps after a payment move later by exactly the days between the due
//! date and that payment. Real store, real dispatcher, manual clock.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use common::sim::Sim;
use common::test_policy;
use jiff::civil::{Date, date, time};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use plazo::domain::AttemptOutcome;
use proptest::prelude::*;

const ZONE: &str = "America/Bogota";
const DUE: Date = date(2026, 3, 16);

fn policy(offsets: &[i32], last_payment: bool) -> String {
    let steps: Vec<String> = offsets
        .iter()
        .enumerate()
        .map(|(i, o)| {
            format!(
                "[[cadences.c.steps]]\nname = \"s{i}\"\noffset = \"{o:+}d\"\nchannels = [\"email\"]\ntemplate = \"due_today\"\ntone = \"friendly\"\n\n"
            )
        })
        .collect();
    let mut p = test_policy(ZONE, "es", ("00:00", "24:00"), &["c"], &steps);
    if last_payment {
        p.push_str("[payments]\ncadence_anchor = \"last_payment\"\n");
    }
    p
}

/// Where step `offset` falls from anchor date `anchor`: 09:00 local that many days later.
fn at(anchor: Date, offset: i32) -> Timestamp {
    anchor
        .checked_add(Span::new().days(offset))
        .unwrap()
        .to_datetime(time(9, 0, 0, 0))
        .to_zoned(TimeZone::get(ZONE).unwrap())
        .unwrap()
        .timestamp()
}

/// Runs the chase to its end, paying 1,000 COP at each `(after_send, percent)`: after the
/// `after_send`-th message, `percent` % of the way to the next one. Returns the sends (step
/// name, time) and the payment times.
fn run(
    offsets: &[i32],
    last_payment: bool,
    payments: &[(usize, u32)],
) -> (Sim, Vec<(String, Timestamp)>, Vec<Timestamp>) {
    let sim = Sim::new(&policy(offsets, last_payment), "2026-03-01T12:00:00Z");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    sim.client(
        "cli",
        serde_json::json!({"name": "Ana", "email": "ana@x.example.co", "timezone": ZONE}),
    );
    sim.invoice("inv", "cli", "2026-03-16", "1000000");
    let mut sends: Vec<(String, Timestamp)> = Vec::new();
    let mut paid_at: Vec<Timestamp> = Vec::new();
    let mut todo: Vec<(usize, u32)> = payments.to_vec();
    todo.sort();
    let mut guard = 0;
    while let Some(next) = sim.pending("inv") {
        guard += 1;
        assert!(guard < 100, "the chase does not end");
        let done = sends.len();
        if let Some(pos) = todo.iter().position(|(k, _)| *k == done && done > 0) {
            let (_, percent) = todo.remove(pos);
            let from = sends
                .last()
                .unwrap()
                .1
                .max(paid_at.last().copied().unwrap_or(Timestamp::MIN));
            let span = next.fire_at.duration_since(from);
            let t = from + span * i32::try_from(percent).unwrap() / 100;
            assert!(t > from && t < next.fire_at);
            sim.clock.set(t);
            sim.pay("inv", "1000", &format!("p{}", paid_at.len()));
            paid_at.push(t);
            continue;
        }
        let fire = next.fire_at;
        assert_eq!(rt.block_on(sim.at_ts(fire)), 1);
        let sent = sim.email.sent();
        assert_eq!(sent.len(), done + 1, "one message per dispatch");
        sends.push((sent.last().unwrap().step.clone(), fire));
    }
    (sim, sends, paid_at)
}

fn check(offsets: &[i32], last_payment: bool, payments: &[(usize, u32)]) {
    let (sim, sends, paid_at) = run(offsets, last_payment, payments);
    let names: Vec<String> = sends.iter().map(|(n, _)| n.clone()).collect();
    let all: Vec<String> = (0..offsets.len()).map(|i| format!("s{i}")).collect();
    assert_eq!(names, all, "every step once, in order");
    assert!(
        sim.outcomes("inv", AttemptOutcome::Skipped).is_empty(),
        "{:?}",
        sim.outcomes("inv", AttemptOutcome::Skipped)
    );
    let zone = TimeZone::get(ZONE).unwrap();
    for (i, (_, t)) in sends.iter().enumerate() {
        let anchor = if last_payment {
            paid_at
                .iter()
                .filter(|p| *p < t)
                .map(|p| p.to_zoned(zone.clone()).date())
                .max()
                .map_or(DUE, |d| d.max(DUE))
        } else {
            DUE
        };
        assert_eq!(*t, at(anchor, offsets[i]), "step s{i} (anchor {anchor})");
        assert!(
            *t >= at(DUE, offsets[i]),
            "never earlier than the due date puts it"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn no_step_is_skipped_or_sent_twice_with_either_anchor(
        offsets in proptest::collection::btree_set(-5i32..=40, 2..=6),
        payments in proptest::collection::vec((1usize..6, 1u32..100), 0..5),
        last_payment in any::<bool>(),
    ) {
        let offsets: Vec<i32> = offsets.into_iter().collect();
        check(&offsets, last_payment, &payments);
    }
}

#[test]
fn a_payment_after_the_due_date_moves_the_next_steps_by_the_same_days() {
    // Steps at 0d, +5d, +15d; 1,000 paid 30 % of the way from the first to the second:
    // 03-18T02:00Z, which is 03-17 21:00 in Bogotá, one local day after the due date.
    let (_, sends, _) = run(&[0, 5, 15], true, &[(1, 30)]);
    let times: Vec<String> = sends.iter().map(|(_, t)| t.to_string()).collect();
    assert_eq!(
        times,
        [
            "2026-03-16T14:00:00Z",
            "2026-03-22T14:00:00Z",
            "2026-04-01T14:00:00Z"
        ]
    );
    let (_, sends, _) = run(&[0, 5, 15], false, &[(1, 30)]);
    let times: Vec<String> = sends.iter().map(|(_, t)| t.to_string()).collect();
    assert_eq!(
        times,
        [
            "2026-03-16T14:00:00Z",
            "2026-03-21T14:00:00Z",
            "2026-03-31T14:00:00Z"
        ]
    );
}
