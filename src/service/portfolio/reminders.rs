//! `GET /v1/reminders`: what is planned to go out in a time range, in firing order, with the
//! channel each would try first for its client.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{ClientCache, Page, SCAN_BUDGET, cursor, given, page_size, shown};
use crate::dispatch::channel_chain;
use crate::domain::when::parse_instant;
use crate::domain::{ReminderId, Track};
use crate::policy::{Policy, StepAction};
use crate::schedule::client_zone;
use crate::service::ServiceError;
use crate::store::{DueEntry, Store};

const KIND: &str = "reminders";

/// Query of `GET /v1/reminders`; every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReminderQuery {
    /// From this instant (RFC 3339, inclusive; default: now).
    #[serde(default)]
    pub from: Option<String>,
    /// To this instant (RFC 3339, exclusive; default: 24 hours after `from`).
    #[serde(default)]
    pub to: Option<String>,
    /// Only reminders whose first channel for their client is this kind (`email`, `sms`,
    /// `whatsapp`, `webhook`...), or `none` for steps that send nothing (hand-off, write-off,
    /// call tasks, promise deadlines).
    #[serde(default)]
    pub channel: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[serde(default)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// One planned reminder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReminderListItem {
    /// The reminder's id.
    pub id: String,
    /// The invoice it chases.
    pub invoice_id: String,
    /// The debtor.
    pub client_id: String,
    /// When it is due to go out (UTC). The dispatcher still applies contact windows, holidays
    /// and caps when it fires, which may defer it.
    pub fire_at: Timestamp,
    /// The same instant in the client's time zone.
    pub local_time: String,
    /// Which schedule it belongs to.
    pub track: Track,
    /// The cadence.
    pub cadence: String,
    /// The step's name.
    pub step: String,
    /// What the step does: `remind`, `hand_off`, `write_off`, `task`, `check` (the end of a
    /// promise's grace period), or `stale` (the step is no longer at that place in the policy:
    /// the dispatcher will skip it).
    pub action: String,
    /// The channels it would try, in order, for this client (empty when it sends nothing).
    pub channels: Vec<String>,
    /// Send attempts made so far (a retry is planned like any reminder).
    pub attempts: u32,
}

fn instant(field: &'static str, s: &str) -> Result<Timestamp, ServiceError> {
    parse_instant(s).map_err(|e| {
        ServiceError::invalid(
            field,
            format!(
                "{:?}: {e}; write an RFC 3339 instant like 2026-03-02T00:00:00-05:00 (+ as %2B in a URL)",
                shown(s)
            ),
        )
    })
}

fn encode(e: &DueEntry) -> String {
    let mut key = Vec::with_capacity(24 + e.invoice.as_str().len());
    key.extend_from_slice(&e.at.as_microsecond().to_be_bytes());
    key.extend_from_slice(&e.reminder.to_bytes());
    key.extend_from_slice(e.invoice.as_str().as_bytes());
    cursor::encode(KIND, &key)
}

fn decode(c: &str) -> Result<DueEntry, ServiceError> {
    let raw = cursor::decode(KIND, c)?;
    let bad = || {
        ServiceError::invalid(
            "cursor",
            "is not a cursor from this API; pass next_cursor of the previous page as it is",
        )
    };
    let (at, rest) = raw.split_at_checked(8).ok_or_else(bad)?;
    let (rid, inv) = rest.split_at_checked(16).ok_or_else(bad)?;
    let at = i64::from_be_bytes(at.try_into().map_err(|_| bad())?);
    let rid: [u8; 16] = rid.try_into().map_err(|_| bad())?;
    let inv = String::from_utf8(inv.to_vec()).map_err(|_| bad())?;
    Ok(DueEntry {
        at: Timestamp::from_microsecond(at).map_err(|_| bad())?,
        reminder: ReminderId::from_bytes(rid),
        invoice: crate::domain::InvoiceId::new(inv).map_err(|_| bad())?,
    })
}

/// Lists the reminders planned in the query's range as of `now`, a page at a time.
pub fn list_reminders(
    store: &Store,
    policy: &Policy,
    q: &ReminderQuery,
    now: Timestamp,
) -> Result<Page<ReminderListItem>, ServiceError> {
    let limit = page_size(q.limit.as_deref())?;
    let from = match given(&q.from) {
        Some(s) => instant("from", s)?,
        None => now,
    };
    let to = match given(&q.to) {
        Some(s) => instant("to", s)?,
        None => from
            .saturating_add(SignedDuration::from_hours(24))
            .unwrap_or(from),
    };
    if to < from {
        return Err(ServiceError::invalid(
            "to",
            "is before from; give a range with from <= to",
        ));
    }
    let channel = given(&q.channel);
    let mut after = given(&q.cursor).map(decode).transpose()?;
    let mut items = Vec::new();
    let mut read = 0usize;
    let mut clients = ClientCache::default();
    let exhausted = 'walk: loop {
        let batch = store.due_entries(from, to, after.as_ref(), 256)?;
        if batch.is_empty() {
            break true;
        }
        for e in batch {
            if items.len() >= limit || read >= SCAN_BUDGET {
                break 'walk false;
            }
            read += 1;
            after = Some(e.clone());
            let Some(r) = store.reminder(&e.invoice, &e.reminder)? else {
                continue;
            };
            let client = clients.get(store, &r.client_id)?;
            let step = policy
                .cadences
                .get(&r.cadence)
                .and_then(|c| c.steps.get(r.step_index as usize))
                .filter(|s| s.name == r.step_name);
            let (action, channels) = match (&r.track, step) {
                (Track::Deadline { .. }, _) => ("check".to_owned(), Vec::new()),
                (_, Some(s)) if s.action == StepAction::Remind => (
                    "remind".to_owned(),
                    channel_chain(
                        &s.channels,
                        client
                            .map(|c| c.preferred_channels.as_slice())
                            .unwrap_or(&[]),
                    ),
                ),
                (_, Some(s)) => (action_name(&s.action).to_owned(), Vec::new()),
                (_, None) => ("stale".to_owned(), Vec::new()),
            };
            let wanted = match channel {
                None => true,
                Some("none") => channels.is_empty(),
                Some(k) => channels.first().is_some_and(|c| c == k),
            };
            if !wanted {
                continue;
            }
            let zone = client.map_or_else(
                || policy.defaults.timezone.clone(),
                |c| client_zone(policy, c),
            );
            items.push(ReminderListItem {
                id: r.id.to_string(),
                invoice_id: r.invoice_id.to_string(),
                client_id: r.client_id.to_string(),
                fire_at: r.fire_at,
                local_time: r.fire_at.to_zoned(zone).to_string(),
                track: r.track,
                cadence: r.cadence.clone(),
                step: r.step_name.clone(),
                action,
                channels,
                attempts: r.attempts,
            });
        }
    };
    let more = !exhausted && !store.due_entries(from, to, after.as_ref(), 1)?.is_empty();
    let next_cursor = if more {
        after.as_ref().map(encode)
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

fn action_name(a: &StepAction) -> &'static str {
    match a {
        StepAction::Remind => "remind",
        StepAction::HandOff(_) => "hand_off",
        StepAction::WriteOff => "write_off",
        StepAction::Task => "task",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reminder_cursors_round_trip() {
        let e = DueEntry {
            at: "2026-03-02T10:00:00.123456Z".parse().unwrap(),
            reminder: ReminderId::from_bytes([7; 16]),
            invoice: crate::domain::InvoiceId::new("FV-1").unwrap(),
        };
        assert_eq!(decode(&encode(&e)).unwrap(), e);
        assert!(decode(&cursor::encode(KIND, b"short")).is_err());
        assert!(decode(&cursor::encode("invoices", b"FV-1")).is_err());
    }
}
