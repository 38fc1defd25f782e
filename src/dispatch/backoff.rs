//! When to retry a transient failure: exponential backoff with jitter, honouring a provider's
//! `Retry-After`. Deciding *whether* to retry is the channel error's job; this decides *when*.

use std::time::Duration;

/// Delay before retry number `attempt` (1 = first retry): `base * 2^(attempt-1)`, capped at
/// `max`, multiplied by `jitter` (expected in 0.8..=1.2), and never shorter than `retry_after`.
pub fn retry_delay(
    attempt: u32,
    base: Duration,
    max: Duration,
    jitter: f64,
    retry_after: Option<Duration>,
) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let raw = base.saturating_mul(1u32 << exp).min(max);
    let jittered = raw.mul_f64(jitter.clamp(0.5, 1.5));
    match retry_after {
        Some(ra) if ra > jittered => ra.min(max.max(ra)),
        _ => jittered,
    }
}

/// A random jitter factor in 0.8..=1.2.
pub fn jitter() -> f64 {
    0.8 + rand::random::<f64>() * 0.4
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn doubles_and_caps() {
        assert_eq!(retry_delay(1, S(30), S(3600), 1.0, None), S(30));
        assert_eq!(retry_delay(2, S(30), S(3600), 1.0, None), S(60));
        assert_eq!(retry_delay(4, S(30), S(3600), 1.0, None), S(240));
        assert_eq!(retry_delay(20, S(30), S(3600), 1.0, None), S(3600));
        assert_eq!(retry_delay(u32::MAX, S(30), S(3600), 1.0, None), S(3600));
    }

    #[test]
    fn jitter_spreads_and_retry_after_wins() {
        assert_eq!(retry_delay(1, S(100), S(3600), 0.8, None), S(80));
        assert_eq!(retry_delay(1, S(100), S(3600), 1.2, None), S(120));
        assert_eq!(retry_delay(1, S(30), S(3600), 1.0, Some(S(90))), S(90));
        assert_eq!(retry_delay(3, S(30), S(3600), 1.0, Some(S(5))), S(120));
        for _ in 0..100 {
            let j = jitter();
            assert!((0.8..=1.2).contains(&j));
        }
    }
}
