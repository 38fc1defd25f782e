//! Which segment chases a client's invoice.
//!
//! - [`choose_segment`]: the segment an invoice *should* follow now — the client's explicit
//!   `segment`, else the first `[segments.*]` whose `when` rule matches the client's facts and
//!   the invoice, else a tag naming a segment, else `default_segment`.
//! - [`segment_followed`]: the segment it *does* follow, as recorded on the invoice
//!   ([`Invoice::followed`]) when the chase last (re)planned it. The planner reads this one, so a
//!   plan never changes segment silently; the service moves an invoice from one to the other
//!   (and says so on its timeline).
//! - [`segment_for`]: the static choice (explicit segment, tags, default), without rules.

use jiff::Timestamp;

use crate::domain::{Client, Invoice, behaviour_of};
use crate::policy::rules::rule_context;
use crate::policy::{Policy, Segment};

use super::zone::client_zone;

/// Returned for a policy with no segments at all (which validation rejects): it names no
/// cadence, so the plan is empty.
static NO_SEGMENT: Segment = Segment {
    name: String::new(),
    cadence: String::new(),
    window: None,
    group_by_client: false,
};

/// The segment `client` belongs to without rules.
///
/// `client.segment` if it names a segment of the policy; else the first of `client.tags` that
/// does; else `policy.default_segment`. If even that is missing (validation guarantees it is
/// not), the first segment of the policy, or an empty segment with no cadence. Never panics.
pub fn segment_for<'p>(policy: &'p Policy, client: &Client) -> &'p Segment {
    client
        .segment
        .iter()
        .chain(client.tags.iter())
        .find_map(|name| policy.segments.get(name))
        .or_else(|| policy.segments.get(&policy.default_segment))
        .or_else(|| policy.segments.values().next())
        .unwrap_or(&NO_SEGMENT)
}

/// The segment `invoice`'s chase follows: the one recorded on it, if the policy still has it;
/// else the static choice ([`segment_for`]).
pub fn segment_followed<'p>(policy: &'p Policy, client: &Client, invoice: &Invoice) -> &'p Segment {
    invoice
        .followed
        .as_ref()
        .and_then(|f| policy.segments.get(&f.segment))
        .unwrap_or_else(|| segment_for(policy, client))
}

/// A segment chosen for an invoice, and why.
#[derive(Debug, Clone, Copy)]
pub struct Chosen<'p> {
    /// The segment.
    pub segment: &'p Segment,
    /// The `when` rule that chose it, when a rule did.
    pub rule: Option<&'p str>,
}

/// The segment `invoice` of `client` should follow as of `now`: the client's explicit
/// `segment` (when the policy has it), else the first segment whose rule matches, else the
/// first tag naming a segment, else the default.
pub fn choose_segment<'p>(
    policy: &'p Policy,
    client: &Client,
    invoice: &Invoice,
    now: Timestamp,
) -> Chosen<'p> {
    if let Some(segment) = client.segment.as_ref().and_then(|s| policy.segments.get(s)) {
        return Chosen {
            segment,
            rule: None,
        };
    }
    if !policy.rules.is_empty() {
        let facts = behaviour_of(client, policy.facts.last_paid, now);
        let zone = client_zone(policy, client);
        let ctx = rule_context(client, &facts, invoice, &zone, now);
        if let Some((name, rule)) = policy.rules.first_match(&ctx) {
            if let Some(segment) = policy.segments.get(name) {
                return Chosen {
                    segment,
                    rule: Some(rule),
                };
            }
        }
    }
    Chosen {
        segment: segment_for(policy, client),
        rule: None,
    }
}
