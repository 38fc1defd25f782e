//! `[log] level`: a level name or a `tracing` filter whose every directive names a level, so a
//! typo can never silence the log (a bare word like `loud` would otherwise be read as "trace
//! for a module called loud", and everything else, errors included, would vanish).

use std::str::FromStr;

use tracing_subscriber::filter::{Directive, EnvFilter};

/// The level names accepted on their own or after `target=`.
pub const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];

fn is_level(s: &str) -> bool {
    LEVELS.iter().any(|l| l.eq_ignore_ascii_case(s.trim()))
}

/// Checks a log filter: `info`, or comma-separated directives each of which is a level or
/// `target=level` (e.g. `plazo=debug,info`). `Err` says what is wrong and what is valid.
pub fn check_log_filter(filter: &str) -> Result<(), String> {
    let help = format!(
        "write one of {}, or directives like \"plazo=debug,info\" (each one a level or target=level)",
        LEVELS.join(", ")
    );
    if filter.trim().is_empty() {
        return Err(format!(
            "the log level is empty, which would log nothing; {help}"
        ));
    }
    for directive in filter.split(',') {
        let d = directive.trim();
        if d.is_empty() {
            return Err(format!(
                "{filter:?} has an empty directive (a stray comma); {help}"
            ));
        }
        if is_level(d) {
            continue;
        }
        let level_ok = d
            .rsplit_once('=')
            .is_some_and(|(target, level)| !target.trim().is_empty() && is_level(level));
        if !level_ok || Directive::from_str(d).is_err() {
            return Err(format!("{d:?} is not a log level; {help}"));
        }
    }
    EnvFilter::try_new(filter)
        .map(|_| ())
        .map_err(|e| format!("{filter:?} is not a valid log filter ({e}); {help}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_directives_pass() {
        for ok in [
            "info",
            "INFO",
            " warn ",
            "off",
            "plazo=debug,info",
            "plazo::dispatch=trace",
        ] {
            assert!(check_log_filter(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn typos_and_empty_filters_are_refused_with_the_valid_levels() {
        for bad in [
            "loud",
            "",
            "  ",
            "info,",
            "plazo",
            "plazo=loud",
            "=info",
            "info,,warn",
        ] {
            let e = check_log_filter(bad).unwrap_err();
            assert!(
                e.contains("trace, debug, info, warn, error, off"),
                "{bad}: {e}"
            );
        }
    }
}
