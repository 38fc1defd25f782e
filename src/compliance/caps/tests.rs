//! Hand-checked cap cases: Colombia's one contact a day and one channel a week after an
//! effective contact, Chile's two-day spacing and one call a week, Reg F's 7 calls in 7 days.

use jiff::tz::TimeZone;

use super::*;
use crate::compliance::preset::Cap;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn inv(id: &str) -> InvoiceId {
    InvoiceId::new(id).unwrap()
}

fn contact(at: &str, kind: &str, invoice: &str, effective: bool) -> ContactMade {
    ContactMade {
        at: ts(at),
        kind: kind.into(),
        invoice: inv(invoice),
        effective,
    }
}

/// A debtor in `zone` with `contacts` and no reply.
fn debtor<'a>(contacts: &'a [ContactMade], zone: &'a TimeZone) -> Debtor<'a> {
    Debtor {
        contacts,
        last_inbound: None,
        zone,
    }
}

fn cap(channels: Option<&[&str]>, scope: Scope, per: Period, limit: Limit, count: Count) -> Cap {
    Cap {
        channels: channels.map(|l| l.iter().map(|s| (*s).to_owned()).collect()),
        scope,
        per,
        limit,
        count,
    }
}

fn colombia() -> Vec<(String, Cap)> {
    vec![
        (
            "co_ley_2300".into(),
            cap(
                None,
                Scope::Person,
                Period::Day,
                Limit::Max(1),
                Count::Attempt,
            ),
        ),
        (
            "co_ley_2300".into(),
            cap(
                None,
                Scope::Person,
                Period::CalendarWeek,
                Limit::DistinctChannels(1),
                Count::Effective,
            ),
        ),
    ]
}

fn bogota() -> TimeZone {
    TimeZone::get("America/Bogota").unwrap()
}

#[test]
fn colombia_one_contact_a_day_across_invoices() {
    let zone = bogota();
    // An email about inv-1 went out Monday 2026-12-07 at 09:00 Bogotá (14:00Z).
    let contacts = [contact("2026-12-07T14:00:00Z", "email", "inv-1", false)];
    let debtor = debtor(&contacts, &zone);
    // The same afternoon, an SMS about another invoice is held until local midnight (05:00Z).
    let held = check(
        &colombia(),
        debtor,
        "sms",
        &inv("inv-2"),
        ts("2026-12-07T19:00:00Z"),
    );
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].until, ts("2026-12-08T05:00:00Z"));
    assert_eq!(held[0].to_string(), "co_ley_2300 allows 1 contact a day");
    // The next local day it may go.
    assert!(
        check(
            &colombia(),
            debtor,
            "sms",
            &inv("inv-2"),
            ts("2026-12-08T12:00:00Z")
        )
        .is_empty()
    );
    // 23:59 Bogotá on Monday is still Monday (04:59Z on Tuesday).
    assert_eq!(
        check(
            &colombia(),
            debtor,
            "email",
            &inv("inv-1"),
            ts("2026-12-08T04:59:00Z")
        )
        .len(),
        1
    );
}

#[test]
fn colombia_no_second_channel_in_the_week_after_an_effective_contact() {
    let zone = bogota();
    // Monday's email was delivered (effective); Wednesday an SMS is refused until next Monday
    // 00:00 Bogotá (2026-12-14T05:00Z); another email is fine.
    let contacts = [contact("2026-12-07T14:00:00Z", "email", "inv-1", true)];
    let debtor = debtor(&contacts, &zone);
    let wed = ts("2026-12-09T14:00:00Z");
    let held = check(&colombia(), debtor, "sms", &inv("inv-1"), wed);
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].until, ts("2026-12-14T05:00:00Z"));
    assert!(check(&colombia(), debtor, "email", &inv("inv-1"), wed).is_empty());
    // Not effective (no receipt, no reply): a second channel is fine.
    let contacts = [contact("2026-12-07T14:00:00Z", "email", "inv-1", false)];
    let quiet = Debtor {
        contacts: &contacts,
        ..debtor
    };
    assert!(check(&colombia(), quiet, "sms", &inv("inv-1"), wed).is_empty());
    // A reply from the debtor this week makes it effective too.
    let replied = Debtor {
        last_inbound: Some(ts("2026-12-08T15:00:00Z")),
        ..quiet
    };
    assert_eq!(
        check(&colombia(), replied, "sms", &inv("inv-1"), wed).len(),
        1
    );
}

fn chile() -> Vec<(String, Cap)> {
    let others: &[&str] = &["email", "sms", "whatsapp", "webhook"];
    vec![
        (
            "cl_ley_21320".into(),
            cap(
                Some(&["call"]),
                Scope::Person,
                Period::Rolling7d,
                Limit::Max(1),
                Count::Attempt,
            ),
        ),
        (
            "cl_ley_21320".into(),
            cap(
                Some(others),
                Scope::Person,
                Period::Rolling7d,
                Limit::Max(2),
                Count::Attempt,
            ),
        ),
        (
            "cl_ley_21320".into(),
            cap(
                Some(others),
                Scope::Person,
                Period::Rolling7d,
                Limit::MinGapDays(2),
                Count::Attempt,
            ),
        ),
    ]
}

#[test]
fn chile_two_days_apart_two_a_week_and_one_call() {
    let zone = TimeZone::get("America/Santiago").unwrap();
    let monday = "2026-12-07T13:00:00Z";
    let contacts = [contact(monday, "email", "inv-1", false)];
    let debtor = debtor(&contacts, &zone);
    // Tuesday: not two days apart yet; free 48 hours after Monday's email.
    let held = check(
        &chile(),
        debtor,
        "sms",
        &inv("inv-2"),
        ts("2026-12-08T13:00:00Z"),
    );
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].until, ts("2026-12-09T13:00:00Z"));
    assert_eq!(
        held[0].to_string(),
        "cl_ley_21320 allows 2 days between email/sms/whatsapp/webhook contacts"
    );
    // A call is another count: allowed.
    assert!(
        check(
            &chile(),
            debtor,
            "call",
            &inv("inv-1"),
            ts("2026-12-08T13:00:00Z")
        )
        .is_empty()
    );
    // Two messages in 7 days: the third waits until the first is 7 days old.
    let contacts = [
        contact(monday, "email", "inv-1", false),
        contact("2026-12-09T13:00:00Z", "sms", "inv-1", false),
    ];
    let two = Debtor {
        contacts: &contacts,
        ..debtor
    };
    let held = check(
        &chile(),
        two,
        "email",
        &inv("inv-1"),
        ts("2026-12-12T13:00:00Z"),
    );
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].until, ts("2026-12-14T13:00:00Z"));
    // One call a week.
    let contacts = [contact(monday, "call", "inv-1", false)];
    let called = Debtor {
        contacts: &contacts,
        ..debtor
    };
    let held = check(
        &chile(),
        called,
        "call",
        &inv("inv-1"),
        ts("2026-12-10T13:00:00Z"),
    );
    assert_eq!(held[0].until, ts("2026-12-14T13:00:00Z"));
}

#[test]
fn reg_f_seven_calls_in_seven_days_per_debt() {
    let zone = TimeZone::get("America/New_York").unwrap();
    let reg_f = vec![(
        "us_reg_f".to_owned(),
        cap(
            Some(&["call"]),
            Scope::Debt,
            Period::Rolling7d,
            Limit::Max(7),
            Count::Attempt,
        ),
    )];
    // Seven calls about inv-1, one a day from 2026-03-02 15:00Z.
    let contacts: Vec<ContactMade> = (2..=8)
        .map(|d| contact(&format!("2026-03-{d:02}T15:00:00Z"), "call", "inv-1", false))
        .collect();
    let debtor = debtor(&contacts, &zone);
    // The eighth, on 2026-03-08 at 20:00Z, waits until the first is 7 days old.
    let held = check(
        &reg_f,
        debtor,
        "call",
        &inv("inv-1"),
        ts("2026-03-08T20:00:00Z"),
    );
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].until, ts("2026-03-09T15:00:00Z"));
    assert_eq!(
        held[0].to_string(),
        "us_reg_f allows 7 call contacts in 7 days per invoice"
    );
    // Another debt of the same person is counted apart; email is not limited.
    assert!(
        check(
            &reg_f,
            debtor,
            "call",
            &inv("inv-2"),
            ts("2026-03-08T20:00:00Z")
        )
        .is_empty()
    );
    assert!(
        check(
            &reg_f,
            debtor,
            "email",
            &inv("inv-1"),
            ts("2026-03-08T20:00:00Z")
        )
        .is_empty()
    );
}

#[test]
fn contacts_come_from_sent_lines_receipts_and_call_outcomes() {
    let line =
        |at: &str, outcome: AttemptOutcome, channel: Option<&str>, id: Option<&str>| Attempt {
            at: ts(at),
            invoice_id: inv("inv-1"),
            reminder_id: None,
            step: None,
            channel: channel.map(str::to_owned),
            recipient: None,
            outcome,
            provider_message_id: id.map(str::to_owned),
            delivery: None,
            detail: None,
        };
    let mut receipt = line(
        "2026-12-07T14:01:00Z",
        AttemptOutcome::Receipt,
        Some("sms"),
        Some("SM1"),
    );
    receipt.delivery = Some(DeliveryState::Delivered);
    let mut reached = line(
        "2026-12-08T15:00:00Z",
        AttemptOutcome::Event,
        Some("call"),
        None,
    );
    reached.delivery = Some(DeliveryState::Delivered);
    let timeline = [
        line(
            "2026-11-01T14:00:00Z",
            AttemptOutcome::Sent,
            Some("email"),
            None,
        ),
        line(
            "2026-12-07T14:00:00Z",
            AttemptOutcome::Sent,
            Some("sms"),
            Some("SM1"),
        ),
        receipt,
        line(
            "2026-12-07T16:00:00Z",
            AttemptOutcome::Failed,
            Some("email"),
            None,
        ),
        line(
            "2026-12-07T17:00:00Z",
            AttemptOutcome::Sent,
            Some("email"),
            None,
        ),
        reached,
        line("2026-12-08T16:00:00Z", AttemptOutcome::Event, None, None),
    ];
    let got = contacts_on(&timeline, ts("2026-11-10T00:00:00Z"));
    assert_eq!(
        got,
        vec![
            contact("2026-12-07T14:00:00Z", "sms", "inv-1", true),
            contact("2026-12-07T17:00:00Z", "email", "inv-1", false),
            contact("2026-12-08T15:00:00Z", "call", "inv-1", true),
        ]
    );
}

#[test]
fn a_contact_exactly_seven_days_old_has_left_the_rolling_week() {
    let zone = TimeZone::get("America/Santiago").unwrap();
    let contacts = [
        contact("2026-09-01T13:00:00Z", "email", "inv-1", false),
        contact("2026-09-03T13:00:00Z", "email", "inv-2", false),
    ];
    let debtor = debtor(&contacts, &zone);
    // A minute before the first is 7 days old: held until then.
    let held = check(
        &chile(),
        debtor,
        "email",
        &inv("inv-3"),
        ts("2026-09-08T12:59:00Z"),
    );
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].until, ts("2026-09-08T13:00:00Z"));
    // At that instant it may go (a cap that frees now holds nothing back).
    assert!(
        check(
            &chile(),
            debtor,
            "email",
            &inv("inv-3"),
            ts("2026-09-08T13:00:00Z")
        )
        .is_empty()
    );
}
