//! The reminder record.

use serde::{Deserialize, Serialize};

use super::prim::{BadField, StoredTime, client_id, invoice_id, opt_time};
use crate::domain::{AwaitingReceipt, Reminder, ReminderId, ReminderState, Track};

/// [`Reminder`] on disk, layout version 1: one byte of version, then these fields in this
/// order (postcard, no field names). Separate from the API's JSON shape (whose `track` is an
/// internally tagged enum, which postcard cannot read back) so either can change without the
/// other; a new field means a new version byte and a conversion from this one (see the module
/// docs). Never reorder or remove fields, nor variants of the enums it uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredReminder {
    /// The reminder's uuid.
    id: [u8; 16],
    invoice_id: String,
    client_id: String,
    generation: u32,
    track: StoredTrack,
    step_index: u32,
    step_name: String,
    cadence: String,
    planned_at: StoredTime,
    fire_at: StoredTime,
    state: StoredReminderState,
    attempts: u32,
    channel_index: u32,
    last_error: Option<String>,
    awaiting: Option<StoredAwaitingReceipt>,
    rate_slot: Option<StoredTime>,
}

/// [`Track`] on disk: an externally tagged enum (variant index, then the fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredTrack {
    Cadence,
    Instalment {
        arrangement: u32,
        instalment: u32,
    },
    Deadline {
        arrangement: u32,
        instalment: u32,
    },
    Broken {
        arrangement: u32,
    },
    /// Appended in layout version 1 (a new variant index; older records never hold it).
    ThankYou,
}

/// [`ReminderState`] on disk (variant index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredReminderState {
    Scheduled,
    Claimed,
    AwaitingReceipt,
    Sent,
    Failed,
    Skipped,
    Cancelled,
    Unknown,
    Checked,
}

/// [`AwaitingReceipt`] on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredAwaitingReceipt {
    provider: String,
    provider_message_id: String,
    kind: String,
    channel_index: u32,
    since: StoredTime,
}

impl From<Track> for StoredTrack {
    fn from(t: Track) -> Self {
        match t {
            Track::Cadence => StoredTrack::Cadence,
            Track::Instalment {
                arrangement,
                instalment,
            } => StoredTrack::Instalment {
                arrangement,
                instalment,
            },
            Track::Deadline {
                arrangement,
                instalment,
            } => StoredTrack::Deadline {
                arrangement,
                instalment,
            },
            Track::Broken { arrangement } => StoredTrack::Broken { arrangement },
            Track::ThankYou => StoredTrack::ThankYou,
        }
    }
}

impl From<StoredTrack> for Track {
    fn from(t: StoredTrack) -> Self {
        match t {
            StoredTrack::Cadence => Track::Cadence,
            StoredTrack::Instalment {
                arrangement,
                instalment,
            } => Track::Instalment {
                arrangement,
                instalment,
            },
            StoredTrack::Deadline {
                arrangement,
                instalment,
            } => Track::Deadline {
                arrangement,
                instalment,
            },
            StoredTrack::Broken { arrangement } => Track::Broken { arrangement },
            StoredTrack::ThankYou => Track::ThankYou,
        }
    }
}

impl From<ReminderState> for StoredReminderState {
    fn from(s: ReminderState) -> Self {
        match s {
            ReminderState::Scheduled => StoredReminderState::Scheduled,
            ReminderState::Claimed => StoredReminderState::Claimed,
            ReminderState::AwaitingReceipt => StoredReminderState::AwaitingReceipt,
            ReminderState::Sent => StoredReminderState::Sent,
            ReminderState::Failed => StoredReminderState::Failed,
            ReminderState::Skipped => StoredReminderState::Skipped,
            ReminderState::Cancelled => StoredReminderState::Cancelled,
            ReminderState::Unknown => StoredReminderState::Unknown,
            ReminderState::Checked => StoredReminderState::Checked,
        }
    }
}

impl From<StoredReminderState> for ReminderState {
    fn from(s: StoredReminderState) -> Self {
        match s {
            StoredReminderState::Scheduled => ReminderState::Scheduled,
            StoredReminderState::Claimed => ReminderState::Claimed,
            StoredReminderState::AwaitingReceipt => ReminderState::AwaitingReceipt,
            StoredReminderState::Sent => ReminderState::Sent,
            StoredReminderState::Failed => ReminderState::Failed,
            StoredReminderState::Skipped => ReminderState::Skipped,
            StoredReminderState::Cancelled => ReminderState::Cancelled,
            StoredReminderState::Unknown => ReminderState::Unknown,
            StoredReminderState::Checked => ReminderState::Checked,
        }
    }
}

impl From<&AwaitingReceipt> for StoredAwaitingReceipt {
    fn from(a: &AwaitingReceipt) -> Self {
        StoredAwaitingReceipt {
            provider: a.provider.clone(),
            provider_message_id: a.provider_message_id.clone(),
            kind: a.kind.clone(),
            channel_index: a.channel_index,
            since: a.since.into(),
        }
    }
}

impl TryFrom<StoredAwaitingReceipt> for AwaitingReceipt {
    type Error = BadField;
    fn try_from(s: StoredAwaitingReceipt) -> Result<Self, BadField> {
        Ok(AwaitingReceipt {
            provider: s.provider,
            provider_message_id: s.provider_message_id,
            kind: s.kind,
            channel_index: s.channel_index,
            since: s.since.get("awaiting.since")?,
        })
    }
}

impl From<&Reminder> for StoredReminder {
    fn from(r: &Reminder) -> Self {
        StoredReminder {
            id: r.id.to_bytes(),
            invoice_id: r.invoice_id.as_str().to_owned(),
            client_id: r.client_id.as_str().to_owned(),
            generation: r.generation,
            track: r.track.into(),
            step_index: r.step_index,
            step_name: r.step_name.clone(),
            cadence: r.cadence.clone(),
            planned_at: r.planned_at.into(),
            fire_at: r.fire_at.into(),
            state: r.state.into(),
            attempts: r.attempts,
            channel_index: r.channel_index,
            last_error: r.last_error.clone(),
            awaiting: r.awaiting.as_ref().map(StoredAwaitingReceipt::from),
            rate_slot: r.rate_slot.map(StoredTime::from),
        }
    }
}

impl TryFrom<StoredReminder> for Reminder {
    type Error = BadField;
    fn try_from(s: StoredReminder) -> Result<Self, BadField> {
        Ok(Reminder {
            id: ReminderId::from_bytes(s.id),
            invoice_id: invoice_id(s.invoice_id, "invoice_id")?,
            client_id: client_id(s.client_id, "client_id")?,
            generation: s.generation,
            track: s.track.into(),
            step_index: s.step_index,
            step_name: s.step_name,
            cadence: s.cadence,
            planned_at: s.planned_at.get("planned_at")?,
            fire_at: s.fire_at.get("fire_at")?,
            state: s.state.into(),
            attempts: s.attempts,
            channel_index: s.channel_index,
            last_error: s.last_error,
            awaiting: s.awaiting.map(AwaitingReceipt::try_from).transpose()?,
            rate_slot: opt_time(s.rate_slot, "rate_slot")?,
        })
    }
}
