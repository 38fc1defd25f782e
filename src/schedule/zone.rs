//! The client's time zone ([`client_zone`]). A leaf of `schedule`: the planner and segment
//! choice both need it, and it needs neither.

use jiff::tz::TimeZone;

use crate::domain::Client;
use crate::policy::Policy;

/// The client's time zone: `client.timezone` if it is a zone jiff knows, else the policy's
/// default zone.
pub fn client_zone(policy: &Policy, client: &Client) -> TimeZone {
    zone_and_name(policy, client).0
}

/// The client's zone and its IANA name (for display and storage).
pub(super) fn zone_and_name(policy: &Policy, client: &Client) -> (TimeZone, String) {
    if let Some(name) = client.timezone.as_deref() {
        if let Ok(tz) = TimeZone::get(name) {
            let name = tz.iana_name().unwrap_or(name).to_owned();
            return (tz, name);
        }
    }
    (
        policy.defaults.timezone.clone(),
        policy.defaults.timezone_name.clone(),
    )
}
