//! The summary `plazo simulate` prints from the daemon's JSON report.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::Value;

/// A table row: the current value, the candidate's and the difference.
fn row(out: &mut String, label: &str, cur: &Value, cand: Option<&Value>, diff: Option<&Value>) {
    let show = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_owned(),
        Some(v) => v.to_string(),
    };
    let _ = write!(out, "  {label:<32} {:>12}", show(Some(cur)));
    if cand.is_some() || diff.is_some() {
        let _ = write!(out, " {:>12} {:>12}", show(cand), show(diff));
    }
    out.push('\n');
}

fn keys<'a>(vals: &[Option<&'a Value>]) -> BTreeSet<&'a str> {
    vals.iter()
        .flatten()
        .filter_map(|v| v.as_object())
        .flat_map(|m| m.keys().map(String::as_str))
        .collect()
}

/// Renders a `POST /v1/simulate` answer for a terminal.
pub fn render(r: &Value) -> String {
    let mut out = String::new();
    let p = &r["portfolio"];
    let _ = writeln!(
        out,
        "Simulated {} days, {} to {}: {} clients, {} invoices, {} pending reminders.",
        r["days"],
        r["from"].as_str().unwrap_or("?"),
        r["to"].as_str().unwrap_or("?"),
        p["clients"],
        p["invoices"],
        p["reminders"]
    );
    let cur = &r["current"];
    let cand = r.get("candidate");
    let diff = r.get("difference");
    let _ = write!(out, "\n  {:<32} {:>12}", "", "current");
    if cand.is_some() {
        let _ = write!(out, " {:>12} {:>12}", "candidate", "difference");
    }
    out.push('\n');
    row(
        &mut out,
        "messages",
        &cur["messages"],
        cand.map(|c| &c["messages"]),
        diff.map(|d| &d["messages"]),
    );
    for (title, field) in [
        ("channel", "by_channel"),
        ("segment", "by_segment"),
        ("step", "by_step"),
        ("deferred", "deferrals"),
    ] {
        for k in keys(&[Some(&cur[field]), cand.map(|c| &c[field])]) {
            let pick = |v: &Value| v[field].get(k).cloned().unwrap_or(Value::from(0));
            row(
                &mut out,
                &format!("{title} {k}"),
                &pick(cur),
                cand.map(pick).as_ref(),
                diff.map(pick).as_ref(),
            );
        }
    }
    row(
        &mut out,
        "caps hit",
        &cur["caps_hit"],
        cand.map(|c| &c["caps_hit"]),
        None,
    );
    row(
        &mut out,
        "skipped",
        &cur["skipped"],
        cand.map(|c| &c["skipped"]),
        None,
    );
    row(
        &mut out,
        "failed",
        &cur["failed"],
        cand.map(|c| &c["failed"]),
        None,
    );
    let currency = cur["cost"]["currency"].as_str().unwrap_or("");
    row(
        &mut out,
        &format!("estimated cost ({currency})"),
        &cur["cost"]["total"],
        cand.map(|c| &c["cost"]["total"]),
        diff.map(|d| &d["cost"]),
    );
    let _ = writeln!(
        out,
        "\nMessages per day (current{}):",
        if cand.is_some() { " / candidate" } else { "" }
    );
    let days = keys(&[Some(&cur["by_day"]), cand.map(|c| &c["by_day"])]);
    for d in days {
        let day = |v: &Value| {
            v["by_day"]
                .get(d)
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, n)| format!("{k} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_else(|| "none".into())
        };
        let _ = write!(out, "  {d}  {}", day(cur));
        if let Some(c) = cand {
            let _ = write!(out, "  /  {}", day(c));
        }
        out.push('\n');
    }
    if let Some(a) = r["assumptions"].as_array() {
        out.push_str("\nAssumes:\n");
        for x in a {
            let _ = writeln!(out, "  - {}", x.as_str().unwrap_or(""));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_both_policies_and_the_difference() {
        let r = serde_json::json!({
            "days": 2, "from": "2026-12-03T12:00:00Z", "to": "2026-12-05T12:00:00Z",
            "portfolio": {"clients": 1, "invoices": 2, "reminders": 2},
            "current": {"messages": 3, "by_channel": {"email": 2, "sms": 1}, "by_segment": {"standard": 3},
                        "by_step": {"due_today": 3}, "by_day": {"2026-12-04": {"email": 2, "sms": 1}},
                        "deferrals": {"caps": 1}, "caps_hit": 1, "skipped": 0, "failed": 0,
                        "cost": {"currency": "USD", "by_channel": {}, "total": "0.0079"}},
            "candidate": {"messages": 2, "by_channel": {"email": 2}, "by_segment": {"standard": 2},
                        "by_step": {"due_today": 2}, "by_day": {"2026-12-04": {"email": 2}},
                        "deferrals": {}, "caps_hit": 0, "skipped": 0, "failed": 0,
                        "cost": {"currency": "USD", "by_channel": {}, "total": "0"}},
            "difference": {"messages": -1, "by_channel": {"email": 0, "sms": -1}, "by_segment": {},
                           "by_step": {}, "deferrals": {"caps": -1}, "cost": "-0.0079"},
            "assumptions": ["nobody pays"]
        });
        let text = render(&r);
        assert!(text.contains("1 clients, 2 invoices"), "{text}");
        let sms = text.lines().find(|l| l.contains("channel sms")).unwrap();
        assert_eq!(
            sms.split_whitespace().collect::<Vec<_>>(),
            ["channel", "sms", "1", "0", "-1"]
        );
        let cost = text
            .lines()
            .find(|l| l.contains("estimated cost (USD)"))
            .unwrap();
        assert!(cost.ends_with("-0.0079"), "{cost}");
        assert!(
            text.contains("2026-12-04  email 2, sms 1  /  email 2"),
            "{text}"
        );
        assert!(text.contains("- nobody pays"));
    }
}
