//! The report as CSV files (RFC 4180: comma-separated, CRLF-free `\n` lines, fields quoted
//! when they hold a comma, a quote or a line break), one table per file.

use super::ReportData;

/// One CSV field.
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv(head: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut out = head.join(",");
    out.push('\n');
    for r in rows {
        let line: Vec<String> = r.iter().map(|f| field(f)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.4}")).unwrap_or_default()
}

/// The files: `kpis.csv` (one row per currency and KPI), `aging.csv`, `collections.csv`,
/// `effectiveness.csv`, `channels.csv`, `arrangements.csv`.
pub fn files(data: &ReportData) -> Vec<(&'static str, String)> {
    let k = &data.kpis;
    let mut kpis = Vec::new();
    for c in &k.currencies {
        let cur = &c.currency;
        let mut add = |name: &str, value: String| kpis.push(vec![cur.clone(), name.into(), value]);
        add("receivables", c.receivables.clone());
        add("open_invoices", c.open_invoices.to_string());
        add("invoiced", c.invoiced.clone());
        add("dso_days", opt(c.dso_days));
        add("cei_percent", opt(c.cei.percent));
        add("opening_receivables", c.cei.opening_receivables.clone());
        add("closing_receivables", c.cei.closing_receivables.clone());
        add("closing_current", c.cei.closing_current.clone());
        add("paid_in_full", c.days_to_pay.invoices.to_string());
        add("avg_days_to_pay", opt(c.days_to_pay.avg_days_to_pay));
        add("avg_days_after_due", opt(c.days_to_pay.avg_days_after_due));
        add("written_off_count", c.written_off.count.to_string());
        add("written_off_amount", c.written_off.amount.clone());
        add("handed_off_count", c.handed_off.count.to_string());
        add("handed_off_amount", c.handed_off.amount.clone());
        add(
            "recovered_after_write_off",
            c.recovered_after_write_off.clone(),
        );
        add(
            "recovered_after_hand_off",
            c.recovered_after_hand_off.clone(),
        );
        add("collected", c.collections.total.clone());
    }
    let aging = k.currencies.iter().flat_map(|c| {
        c.aging.iter().map(|b| {
            vec![
                c.currency.clone(),
                b.bucket.clone(),
                b.count.to_string(),
                b.balance.clone(),
            ]
        })
    });
    let collections = k.currencies.iter().flat_map(|c| {
        c.collections
            .weeks
            .iter()
            .map(|w| vec![c.currency.clone(), w.start.to_string(), w.amount.clone()])
    });
    let effectiveness = data.effectiveness.rows.iter().map(|r| {
        vec![
            r.segment.clone(),
            r.step.clone(),
            r.channel.clone(),
            r.sent.to_string(),
            r.paid.to_string(),
            r.paid_within_3d.to_string(),
            r.paid_within_7d.to_string(),
            format!("{:.4}", r.share_paid_3d),
            format!("{:.4}", r.share_paid_7d),
            opt(r.median_days_to_pay),
        ]
    });
    let channels = k.channels.iter().map(|c| {
        vec![
            c.channel.clone(),
            c.contacts.to_string(),
            c.delivered.to_string(),
            c.failures.to_string(),
            c.inbound.to_string(),
            c.opt_outs.to_string(),
        ]
    });
    let a = &k.arrangements;
    let arrangements = [
        vec![
            "promise".to_owned(),
            a.promises_kept.to_string(),
            a.promises_broken.to_string(),
            opt(a.promise_kept_rate),
        ],
        vec![
            "plan".to_owned(),
            a.plans_kept.to_string(),
            a.plans_broken.to_string(),
            opt(crate::service::reports::kpis::rate(
                a.plans_kept,
                a.plans_broken,
            )),
        ],
        vec![
            "plan_instalment".to_owned(),
            a.instalments_paid.to_string(),
            a.instalments_missed.to_string(),
            opt(a.instalment_kept_rate),
        ],
    ];
    vec![
        ("kpis.csv", csv(&["currency", "kpi", "value"], kpis)),
        (
            "aging.csv",
            csv(&["currency", "bucket", "count", "balance"], aging),
        ),
        (
            "collections.csv",
            csv(&["currency", "week_start", "amount"], collections),
        ),
        (
            "effectiveness.csv",
            csv(
                &[
                    "segment",
                    "step",
                    "channel",
                    "sent",
                    "paid",
                    "paid_within_3d",
                    "paid_within_7d",
                    "share_paid_3d",
                    "share_paid_7d",
                    "median_days_to_pay",
                ],
                effectiveness,
            ),
        ),
        (
            "channels.csv",
            csv(
                &[
                    "channel",
                    "contacts",
                    "delivered",
                    "failures",
                    "inbound",
                    "opt_outs",
                ],
                channels,
            ),
        ),
        (
            "arrangements.csv",
            csv(&["kind", "kept", "broken", "kept_rate"], arrangements),
        ),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn fields_with_commas_quotes_or_newlines_are_quoted() {
        assert_eq!(super::field("plain"), "plain");
        assert_eq!(super::field("a,b"), "\"a,b\"");
        assert_eq!(super::field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(super::field("two\nlines"), "\"two\nlines\"");
    }
}
