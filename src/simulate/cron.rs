//! When the daemon's scheduled passes run: the `[housekeeping]` cron expressions (six
//! fields, seconds first, UTC), parsed as the daemon's scheduler parses them.

use jiff::Timestamp;

use super::SimulateError;

/// A cron schedule in UTC.
pub(super) struct DailyPass(croner::Cron);

impl DailyPass {
    /// Parses `expr` (`0 30 5 * * *`).
    pub(super) fn parse(expr: &str) -> Result<DailyPass, SimulateError> {
        croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .build()
            .parse(expr)
            .map(DailyPass)
            .map_err(|e| SimulateError::Schedule(format!("{expr:?}: {e}")))
    }

    /// The first run at or after (`inclusive`) or strictly after `t`.
    pub(super) fn next_after(&self, t: Timestamp, inclusive: bool) -> Option<Timestamp> {
        let start = chrono::DateTime::<chrono::Utc>::from_timestamp(
            t.as_second(),
            t.subsec_nanosecond().max(0) as u32,
        )?;
        let next = self.0.find_next_occurrence(&start, inclusive).ok()?;
        Timestamp::from_second(next.timestamp()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_runs_are_in_utc_and_strictly_after_when_asked() {
        let p = DailyPass::parse("0 30 5 * * *").unwrap();
        let t: Timestamp = "2026-03-01T05:30:00Z".parse().unwrap();
        assert_eq!(p.next_after(t, true), Some(t));
        assert_eq!(
            p.next_after(t, false),
            Some("2026-03-02T05:30:00Z".parse().unwrap())
        );
        assert!(DailyPass::parse("every day").is_err());
    }
}
