//! The report as one self-contained HTML page: inline CSS, inline SVG charts, the KPI tables;
//! no script, no external URL (it opens offline).

use std::fmt::Write as _;

use super::{ReportData, ReportError, charts};
use crate::service::reports::kpis::CurrencyKpis;

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222;max-width:60em}\
table{border-collapse:collapse;margin:0.5em 0 1.5em}\
th,td{border:1px solid #bbb;padding:0.25em 0.6em;text-align:right}\
th:first-child,td:first-child{text-align:left}\
th{background:#eef2f7}.method{color:#555;font-size:0.9em}\
figure{margin:1em 0}svg{max-width:100%;height:auto}";

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.decimals$}"))
}

fn table(out: &mut String, head: &[&str], rows: &[Vec<String>]) {
    out.push_str("<table><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr>");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", esc(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>\n");
}

fn figure(out: &mut String, id: &str, svg: &str) {
    let _ = writeln!(out, "<figure id=\"{}\">{svg}</figure>", esc(id));
}

fn currency_section(out: &mut String, c: &CurrencyKpis) -> Result<(), ReportError> {
    let cur = &c.currency;
    let _ = writeln!(out, "<h2>{}</h2>", esc(cur));
    table(
        out,
        &["KPI", "value"],
        &[
            vec!["receivables".into(), c.receivables.clone()],
            vec!["open invoices".into(), c.open_invoices.to_string()],
            vec!["invoiced in period".into(), c.invoiced.clone()],
            vec!["DSO (days)".into(), opt(c.dso_days, 1)],
            vec!["CEI (%)".into(), opt(c.cei.percent, 1)],
            vec![
                "invoices paid in full".into(),
                c.days_to_pay.invoices.to_string(),
            ],
            vec![
                "average days to pay".into(),
                opt(c.days_to_pay.avg_days_to_pay, 1),
            ],
            vec![
                "average days after due".into(),
                opt(c.days_to_pay.avg_days_after_due, 1),
            ],
            vec![
                "written off".into(),
                format!(
                    "{} ({} invoices)",
                    c.written_off.amount, c.written_off.count
                ),
            ],
            vec![
                "handed off".into(),
                format!("{} ({} invoices)", c.handed_off.amount, c.handed_off.count),
            ],
            vec![
                "recovered after write-off".into(),
                c.recovered_after_write_off.clone(),
            ],
            vec![
                "recovered after hand-off".into(),
                c.recovered_after_hand_off.clone(),
            ],
            vec!["collected in period".into(), c.collections.total.clone()],
        ],
    );
    out.push_str("<h3>Aging</h3>\n");
    table(
        out,
        &["days overdue", "invoices", "balance"],
        &c.aging
            .iter()
            .map(|b| vec![b.bucket.clone(), b.count.to_string(), b.balance.clone()])
            .collect::<Vec<_>>(),
    );
    figure(out, &format!("aging-{cur}"), &charts::aging(c)?);
    out.push_str("<h3>CEI</h3>\n");
    table(
        out,
        &[
            "opening",
            "invoiced",
            "closing",
            "closing current",
            "CEI (%)",
        ],
        &[vec![
            c.cei.opening_receivables.clone(),
            c.cei.invoiced.clone(),
            c.cei.closing_receivables.clone(),
            c.cei.closing_current.clone(),
            opt(c.cei.percent, 1),
        ]],
    );
    out.push_str("<h3>Collections</h3>\n");
    figure(out, &format!("collections-{cur}"), &charts::collections(c)?);
    Ok(())
}

/// The whole page.
pub fn page(data: &ReportData) -> Result<String, ReportError> {
    let k = &data.kpis;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>plazo portfolio report</title><style>{STYLE}</style></head><body>\n\
         <h1>Portfolio report</h1>\n<p>Balances as of <b>{}</b>; period <b>{}</b> to <b>{}</b> \
         ({:.0} days){}{}.</p>\n<p class=\"method\">DSO: {}<br>CEI: {}<br>Attribution: {}</p>\n",
        esc(&k.as_of.to_string()),
        esc(&k.from.to_string()),
        esc(&k.to.to_string()),
        k.period_days,
        k.currency
            .as_deref()
            .map(|c| format!("; currency {}", esc(c)))
            .unwrap_or_default(),
        k.segment
            .as_deref()
            .map(|s| format!("; segment {}", esc(s)))
            .unwrap_or_default(),
        esc(&k.dso_method),
        esc(&k.cei_method),
        esc(&data.effectiveness.attribution),
    );
    if k.currencies.is_empty() {
        out.push_str("<p>No invoices in this report.</p>\n");
    }
    for c in &k.currencies {
        currency_section(&mut out, c)?;
    }
    let a = &k.arrangements;
    out.push_str("<h2>Promises and plans</h2>\n");
    table(
        &mut out,
        &["", "kept", "broken", "kept rate (%)"],
        &[
            vec![
                "promises".into(),
                a.promises_kept.to_string(),
                a.promises_broken.to_string(),
                opt(a.promise_kept_rate.map(|r| r * 100.0), 1),
            ],
            vec![
                "plan instalments".into(),
                a.instalments_paid.to_string(),
                a.instalments_missed.to_string(),
                opt(a.instalment_kept_rate.map(|r| r * 100.0), 1),
            ],
        ],
    );
    out.push_str("<h2>Contacts by channel</h2>\n");
    table(
        &mut out,
        &[
            "channel",
            "contacts",
            "delivered",
            "failures",
            "inbound",
            "opt-outs",
        ],
        &k.channels
            .iter()
            .map(|c| {
                vec![
                    c.channel.clone(),
                    c.contacts.to_string(),
                    c.delivered.to_string(),
                    c.failures.to_string(),
                    c.inbound.to_string(),
                    c.opt_outs.to_string(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    out.push_str("<h2>Which reminder works</h2>\n");
    let rows = &data.effectiveness.rows;
    table(
        &mut out,
        &[
            "segment",
            "step",
            "channel",
            "sent",
            "paid within 3 days (%)",
            "paid within 7 days (%)",
            "median days to pay",
        ],
        &rows
            .iter()
            .map(|r| {
                vec![
                    r.segment.clone(),
                    r.step.clone(),
                    r.channel.clone(),
                    r.sent.to_string(),
                    format!("{:.1}", r.share_paid_3d * 100.0),
                    format!("{:.1}", r.share_paid_7d * 100.0),
                    opt(r.median_days_to_pay, 1),
                ]
            })
            .collect::<Vec<_>>(),
    );
    if !rows.is_empty() {
        figure(&mut out, "effectiveness", &charts::effectiveness(rows)?);
    }
    out.push_str("</body></html>\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_is_escaped() {
        assert_eq!(
            super::esc("<b>\"R&D\"</b> 'x'"),
            "&lt;b&gt;&quot;R&amp;D&quot;&lt;/b&gt; &#39;x&#39;"
        );
    }
}
