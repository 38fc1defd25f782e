//! What `plazo check` says about contact rules: windows of the policy that go beyond a preset
//! that applies (plazo holds reminders back to the preset's hours; the warning says where the
//! policy promises more than it will do).

use super::rules::Apply;
use super::week::WeekSchedule;
use crate::policy::Policy;

/// One warning per (window, preset) pair where the window allows hours the preset does not,
/// naming the days. The presets looked at are those in `always` and, with `apply =
/// "by_country"`, those of `default_country` (the clients plazo knows least about).
pub fn window_warnings(policy: &Policy) -> Vec<String> {
    let c = &policy.compliance;
    let presets: Vec<_> = c
        .presets
        .values()
        .filter(|p| {
            c.always.contains(&p.name)
                || (c.apply == Apply::ByCountry
                    && p.subdivisions.is_empty()
                    && c.default_country.as_deref() == Some(p.country.as_str()))
        })
        .collect();
    let mut windows = vec![(
        "defaults.window".to_owned(),
        WeekSchedule::from_window(&policy.defaults.window),
    )];
    for s in policy.segments.values() {
        if let Some(w) = &s.window {
            windows.push((
                format!("segments.{}.window", s.name),
                WeekSchedule::from_window(w),
            ));
        }
    }
    let mut out = Vec::new();
    for (field, week) in &windows {
        for p in &presets {
            let days = week.exceeding(&p.week);
            if days.is_empty() {
                continue;
            }
            let yours: Vec<String> = days.iter().map(|d| week.describe_day(*d)).collect();
            let law: Vec<String> = days.iter().map(|d| p.week.describe_day(*d)).collect();
            out.push(format!(
                "{field} ({}) goes beyond preset {} ({}): for clients in {} reminders wait for the preset's hours",
                yours.join(", "),
                p.name,
                law.join(", "),
                p.country
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::policy::parse_policy;

    #[test]
    fn a_saturday_window_beyond_colombias_law_is_named() {
        let text = r#"default_segment = "standard"
templates_dir = "templates"

[defaults]
timezone = "America/Bogota"
locale = "es"
currency = "COP"
send_at = "09:00"
window = { days = "mon-fri", from = "08:00", to = "19:00" }

[company]
name = "X"

[segments.standard]
cadence = "standard"

[segments.late_payers]
cadence = "standard"
window = { days = "mon-sat", from = "08:00", to = "18:00" }

[[cadences.standard.steps]]
name = "due_today"
offset = "0d"
channels = ["email"]
template = "due_today"
tone = "friendly"

[compliance]
apply = "by_country"
default_country = "CO"
"#;
        let p = parse_policy(text, Path::new("config/policy.toml"))
            .unwrap()
            .policy;
        assert_eq!(
            window_warnings(&p),
            vec![
                "segments.late_payers.window (Sat 08:00–18:00) goes beyond preset co_ley_2300 (Sat 08:00–15:00): for clients in CO reminders wait for the preset's hours"
                    .to_owned()
            ]
        );
        // The shipped policy has none.
        let shipped = crate::policy::load_policy(Path::new("config/policy.toml"))
            .unwrap()
            .policy;
        assert_eq!(window_warnings(&shipped), Vec::<String>::new());
    }
}
