//! The report's charts as SVG text, drawn with `plotters`' SVG backend (text as SVG `<text>`
//! elements, no font files needed).

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::ReportError;
use crate::service::reports::EffectRow;
use crate::service::reports::kpis::CurrencyKpis;

/// Chart size in pixels.
const SIZE: (u32, u32) = (720, 320);
const BAR: RGBColor = RGBColor(0x2f, 0x6f, 0xb3);
const BAR2: RGBColor = RGBColor(0xe0, 0x8a, 0x1e);

fn amount(s: &str) -> f64 {
    s.parse::<Decimal>()
        .ok()
        .and_then(|d| d.to_f64())
        .unwrap_or(0.0)
}

fn top(values: impl Iterator<Item = f64>) -> f64 {
    let m = values.fold(0.0_f64, f64::max);
    if m > 0.0 { m * 1.1 } else { 1.0 }
}

fn chart_err(which: &'static str) -> impl Fn(String) -> ReportError {
    move |e| ReportError::Chart(which, e)
}

/// A bar chart of `values` under `labels`, titled `title`; `y_desc` names the value axis.
/// Each series is `(name, colour, values)`, drawn side by side.
fn bars(
    which: &'static str,
    title: &str,
    y_desc: &str,
    labels: &[String],
    series: &[(&str, RGBColor, Vec<f64>)],
    y_max: Option<f64>,
) -> Result<String, ReportError> {
    let err = chart_err(which);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let n = u32::try_from(labels.len().max(1)).unwrap_or(u32::MAX);
        let ymax = y_max.unwrap_or_else(|| top(series.iter().flat_map(|s| s.2.iter().copied())));
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((0u32..n).into_segmented(), 0f64..ymax)
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(y_desc)
            .x_labels(labels.len().max(1))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => labels
                    .get(usize::try_from(*i).unwrap_or(usize::MAX))
                    .cloned()
                    .unwrap_or_default(),
                SegmentValue::Last => String::new(),
            })
            .draw()
            .map_err(|e| err(e.to_string()))?;
        let k = series.len().max(1) as f64;
        for (si, (name, colour, values)) in series.iter().enumerate() {
            let colour = *colour;
            let si = si as f64;
            let bars = values.iter().enumerate().map(move |(i, v)| {
                let i = u32::try_from(i).unwrap_or(u32::MAX);
                // Within the segment: series side by side, with a gap on each side.
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), 0.0),
                        (SegmentValue::Exact(i + 1), *v),
                    ],
                    colour.filled(),
                );
                let left = 0.1 + 0.8 * si / k;
                let right = 0.1 + 0.8 * (si + 1.0) / k;
                let w = f64::from(SIZE.0 - 80) / f64::from(n);
                bar.set_margin(0, 0, (w * left) as u32, (w * (1.0 - right)) as u32);
                bar
            });
            chart
                .draw_series(bars)
                .map_err(|e| err(e.to_string()))?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled())
                });
        }
        if series.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| err(e.to_string()))?;
        }
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(svg)
}

/// Receivables of one currency by days overdue: one bar per aging bucket.
pub fn aging(section: &CurrencyKpis) -> Result<String, ReportError> {
    let labels: Vec<String> = section.aging.iter().map(|b| b.bucket.clone()).collect();
    let values: Vec<f64> = section.aging.iter().map(|b| amount(&b.balance)).collect();
    bars(
        "aging",
        &format!("Aging of receivables ({})", section.currency),
        &format!("balance ({})", section.currency),
        &labels,
        &[("balance", BAR, values)],
        None,
    )
}

/// Money received per week over the period in one currency: a line with a point per week.
pub fn collections(section: &CurrencyKpis) -> Result<String, ReportError> {
    let err = chart_err("collections");
    let weeks = &section.collections.weeks;
    let values: Vec<f64> = weeks.iter().map(|w| amount(&w.amount)).collect();
    let lo = values.iter().copied().fold(0.0_f64, f64::min);
    let hi = top(values.iter().copied());
    let labels: Vec<String> = weeks
        .iter()
        .map(|w| w.start.strftime("%m-%d").to_string())
        .collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let n = u32::try_from(weeks.len().max(1)).unwrap_or(u32::MAX);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Collections per week ({})", section.currency),
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0u32..n, lo..hi)
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .y_desc(format!("received ({})", section.currency))
            .x_desc("week starting")
            .x_labels(weeks.len().clamp(1, 14))
            .x_label_formatter(&|i| {
                labels
                    .get(usize::try_from(*i).unwrap_or(usize::MAX))
                    .cloned()
                    .unwrap_or_default()
            })
            .draw()
            .map_err(|e| err(e.to_string()))?;
        let points: Vec<(u32, f64)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (u32::try_from(i).unwrap_or(u32::MAX), *v))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), BAR.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 3, BAR.filled())))
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))?;
    }
    Ok(svg)
}

/// Share of messages followed by full payment within 3 and 7 days, per step and channel
/// (`segment/step/channel` under each pair of bars).
pub fn effectiveness(rows: &[EffectRow]) -> Result<String, ReportError> {
    let labels: Vec<String> = rows
        .iter()
        .map(|r| format!("{}/{}/{}", r.segment, r.step, r.channel))
        .collect();
    bars(
        "effectiveness",
        "Paid in full after the message, by step and channel",
        "share of messages (%)",
        &labels,
        &[
            (
                "paid within 3 days",
                BAR,
                rows.iter().map(|r| r.share_paid_3d * 100.0).collect(),
            ),
            (
                "paid within 7 days",
                BAR2,
                rows.iter().map(|r| r.share_paid_7d * 100.0).collect(),
            ),
        ],
        Some(100.0),
    )
}
