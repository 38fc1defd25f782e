use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Arrangement, ClientId, Currency, InvoiceId, ReminderId};

/// A debtor: who is chased, where, in which language and time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Client {
    /// The client's id.
    pub id: ClientId,
    /// Name used in greetings.
    pub name: String,
    /// Email address, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone number in E.164 (`+573001234567`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// WhatsApp number in E.164, if different from `phone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whatsapp: Option<String>,
    /// BCP 47 locale such as `es-CO`; the policy default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// IANA time zone such as `America/Bogota`; the policy default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// ISO 3166-1 alpha-2 country code such as `CO`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Subdivision of the country (state, department, community) as its ISO 3166-2 code,
    /// `BR-SP` or `SP`: state contact laws and state holidays apply by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdivision: Option<String>,
    /// Times the debtor asked not to be contacted (Regulation F's "inconvenient times"), taken
    /// out of every contact window: `[{"days": "mon-fri", "from": "12:00", "to": "14:00"}]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_times: Vec<BlockedTime>,
    /// Policy segment name; when absent, the first tag naming a segment, else the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// Channels the client answers, most preferred first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preferred_channels: Vec<String>,
    /// Free-form tags; a tag equal to a segment name selects that segment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Money the client paid beyond what it owed (overpayments), by currency: a credit for
    /// ops to refund or apply. Never applied automatically.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub credits: BTreeMap<String, Credit>,
    /// Promises (and plan instalments) the client broke: not paid by the agreed date plus
    /// grace. Kept by plazo across re-imports; it will feed segmentation.
    #[serde(default)]
    pub broken_promises: u32,
    /// What plazo knows of how the client pays (paid invoices, days late, promises kept...),
    /// kept by plazo from its own data and never taken from an API body. The API shows the
    /// facts derived from it (`GET /v1/clients/{id}`, `facts`), not the ledger itself.
    #[serde(skip)]
    pub facts: super::FactsLedger,
    /// When plazo first stored the client.
    pub created_at: Timestamp,
    /// When the client was last changed.
    pub updated_at: Timestamp,
}

/// A time a debtor asked not to be contacted: on `days` (`"mon-fri"`, `"sat"`, `"daily"`,
/// `"mon,wed"`) from `from` to `to` (local `"HH:MM"`, `to` exclusive, `"24:00"` the end of
/// the day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockedTime {
    /// The days.
    pub days: String,
    /// From (inclusive).
    pub from: String,
    /// To (exclusive).
    pub to: String,
}

/// An amount owed to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    /// The amount, in the currency it is keyed by.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// Where it came from (`overpayment of inv-1 via stripe:in_…`), latest last.
    pub sources: Vec<String>,
}

/// When an invoice falls due: a calendar date in the client's zone, or an exact instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// A calendar date (`2026-03-15`), read in the client's time zone.
    Date(Date),
    /// An exact instant (`2026-03-15T17:00:00Z`).
    Instant(Timestamp),
}

impl Due {
    /// Parses `YYYY-MM-DD` or an RFC 3339 instant.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(d) = s.parse::<Date>() {
            if s.len() == 10 {
                return Ok(Due::Date(d));
            }
        }
        s.parse::<Timestamp>().map(Due::Instant).map_err(|_| {
            format!(
                "due_at {s:?} is neither a date (2026-03-15) nor an RFC 3339 instant (2026-03-15T17:00:00Z)"
            )
        })
    }
}

impl fmt::Display for Due {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Due::Date(d) => write!(f, "{d}"),
            Due::Instant(t) => write!(f, "{t}"),
        }
    }
}

impl Serialize for Due {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for Due {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Due::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Lifecycle of an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Balance outstanding: the chase is on (unless paused).
    Open,
    /// Paid in full: the chase is over.
    Paid,
    /// Handed to a partner (collection agency, lawyer): plazo sends no more reminders;
    /// payments still apply. `POST /v1/invoices/{id}/recall` brings it back.
    HandedOff,
    /// Written off as lost: no more reminders; a later payment still applies (a recovery).
    WrittenOff,
    /// Cancelled: the chase stops and reports leave it out.
    Void,
}

impl std::fmt::Display for InvoiceStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InvoiceStatus::Open => "open",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::HandedOff => "handed_off",
            InvoiceStatus::WrittenOff => "written_off",
            InvoiceStatus::Void => "void",
        })
    }
}

/// A pause on the chase, set by ops or the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// Why the chase is paused (dispute, agreement, ...).
    pub reason: String,
    /// When the pause ends by itself; never, when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    /// When the pause was set.
    pub since: Timestamp,
}

/// A payment applied to an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Amount paid, in the invoice currency.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// When the money was paid.
    pub paid_at: Timestamp,
    /// The payer's or provider's reference; payments are idempotent by reference.
    pub reference: String,
    /// Where the payment came from (`api`, `webhook:<id>`).
    pub source: String,
    /// Other references of the same money (a provider payment reported by two events: Stripe
    /// `stripe:pi_…` and `stripe:ch_…` behind `stripe:in_…`); a later event naming any of them is
    /// a duplicate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub same_as: Vec<String>,
}

/// An invoice being chased.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    /// The invoice's id.
    pub id: InvoiceId,
    /// Who owes it.
    pub client_id: ClientId,
    /// Human invoice number shown in messages (`FV-1001`).
    pub number: String,
    /// ISO 4217 currency.
    pub currency: Currency,
    /// Original amount.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// Amount still owed.
    #[serde(with = "rust_decimal::serde::str")]
    pub balance: Decimal,
    /// Issue date, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<Date>,
    /// Due date or instant.
    pub due_at: Due,
    /// Where the debtor pays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_url: Option<String>,
    /// Free-form metadata from the billing system, available to templates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Open or paid.
    pub status: InvoiceStatus,
    /// Payments applied so far.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payments: Vec<Payment>,
    /// Set while the chase is paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<Pause>,
    /// Plan generation; bumped when the due date changes, which re-plans the cadence.
    pub generation: u32,
    /// Index of the last cadence step handled (sent, failed, skipped) in this generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u32>,
    /// The reminder currently waiting in the due index, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<ReminderId>,
    /// Promises and payment plans made on the invoice, oldest first; at most the last one is
    /// active.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arrangements: Vec<Arrangement>,
    /// When plazo first stored the invoice.
    pub created_at: Timestamp,
    /// When the invoice was last changed.
    pub updated_at: Timestamp,
    /// When the balance reached zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Timestamp>,
    /// The segment whose cadence the chase follows, and that cadence (the one `cursor` counts
    /// steps of); set when the regular cadence is first planned, and changed when the
    /// client's segment changes (its rules, tags or `segment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followed: Option<Followed>,
    /// Why the invoice left the automated chase, while it is `handed_off`, `written_off` or
    /// `void` (and after such an invoice is paid): when, to whom, the balance then and the
    /// money recovered since. Cleared by a recall.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Escalation>,
    /// The plan generation in which the regular cadence ran out of steps (its last step had
    /// passed); the timeline said so and `on_exhausted` ran then, once per generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exhausted: Option<u32>,
}

/// An invoice taken out of the automated chase by a person or by the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    /// What was done.
    pub kind: EscalationKind,
    /// The partner (collection agency, law firm) it was handed to, for a hand-off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner: Option<String>,
    /// Why, as given by the API caller or the policy step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When.
    pub at: Timestamp,
    /// The balance at that moment.
    #[serde(with = "rust_decimal::serde::str")]
    pub balance: Decimal,
    /// Money received since (for a written-off invoice: the recovery).
    #[serde(with = "rust_decimal::serde::str")]
    pub recovered: Decimal,
}

/// What an [`Escalation`] did to the invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationKind {
    /// Handed to a partner: plazo stops its reminders; payments still apply.
    HandedOff,
    /// Written off as lost (*cartera castigada*): reminders stop; a later payment still
    /// applies and counts as a recovery.
    WrittenOff,
    /// Cancelled (issued by mistake, credit note): the chase stops and reports leave it out.
    Voided,
}

impl EscalationKind {
    /// The invoice status this escalation puts an invoice in.
    pub fn status(self) -> InvoiceStatus {
        match self {
            EscalationKind::HandedOff => InvoiceStatus::HandedOff,
            EscalationKind::WrittenOff => InvoiceStatus::WrittenOff,
            EscalationKind::Voided => InvoiceStatus::Void,
        }
    }
}

/// The segment an invoice's chase follows, and its cadence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Followed {
    /// Segment name.
    pub segment: String,
    /// Its cadence when the invoice joined it (the cadence `cursor` counts steps of).
    pub cadence: String,
}

impl Invoice {
    /// Which schedule the chase follows now: the active arrangement's current instalment, the
    /// broken-promise cadence of an arrangement that just broke, or the regular cadence.
    pub fn agenda(&self) -> Track {
        match self.arrangements.last() {
            Some(a) if a.is_active() && (a.current as usize) < a.instalments.len() => {
                Track::Instalment {
                    arrangement: a.id,
                    instalment: a.current,
                }
            }
            Some(a) if a.state == super::ArrangementState::Broken && !a.broken_done => {
                Track::Broken { arrangement: a.id }
            }
            _ => Track::Cadence,
        }
    }

    /// Arrangement number `id`.
    pub fn arrangement(&self, id: u32) -> Option<&Arrangement> {
        self.arrangements.iter().find(|a| a.id == id)
    }

    /// Arrangement number `id`, to change it.
    pub fn arrangement_mut(&mut self, id: u32) -> Option<&mut Arrangement> {
        self.arrangements.iter_mut().find(|a| a.id == id)
    }

    /// The active arrangement, if any (always the last one).
    pub fn active_arrangement(&self) -> Option<&Arrangement> {
        self.arrangements.last().filter(|a| a.is_active())
    }

    /// True while reminders may go out: open, with a balance, and not paused at `now`.
    pub fn is_chaseable(&self, now: Timestamp) -> bool {
        self.status == InvoiceStatus::Open
            && self.balance > Decimal::ZERO
            && self
                .pause
                .as_ref()
                .is_none_or(|p| p.until.is_some_and(|u| u <= now))
    }
}

/// Where a reminder is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReminderState {
    /// Waiting in the due index.
    Scheduled,
    /// Claimed by the dispatcher; the send is in flight.
    Claimed,
    /// Sent on a channel that reports delivery; waiting (in the due index, until the policy's
    /// `receipt_timeout`) for a delivered or failed receipt before the step is done.
    AwaitingReceipt,
    /// Delivered to the channel.
    Sent,
    /// Every channel failed permanently, or retries ran out.
    Failed,
    /// Not sent: superseded by catch-up, the invoice closed, or no channel was usable.
    Skipped,
    /// Cancelled (payment, re-plan).
    Cancelled,
    /// Found claimed after a crash: it may or may not have gone out.
    Unknown,
    /// A step that sends no message and ran: a deadline check (a promise or instalment found
    /// unpaid at its date plus grace, or found settled), or a `hand_off` / `write_off` step.
    Checked,
}

/// Which schedule a reminder belongs to: the segment's regular cadence, a promise or plan
/// instalment's cadence, the deadline of an instalment, the broken-promise cadence, or the
/// thank-you after full payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Track {
    /// The regular cadence of the client's segment, anchored on the due date.
    #[default]
    Cadence,
    /// A step of the promise/plan cadence, anchored on instalment `instalment`'s date.
    Instalment {
        /// Arrangement number on the invoice.
        arrangement: u32,
        /// Instalment index.
        instalment: u32,
    },
    /// The end of instalment `instalment`'s grace period: not a message, a check.
    Deadline {
        /// Arrangement number on the invoice.
        arrangement: u32,
        /// Instalment index.
        instalment: u32,
    },
    /// A step of the broken-promise cadence, anchored on the moment the arrangement broke.
    Broken {
        /// Arrangement number on the invoice.
        arrangement: u32,
    },
    /// The thank-you message sent once an invoice is paid in full (`[payments] thank_you`):
    /// not part of the chase, never the invoice's pending reminder; at most one per invoice.
    ThankYou,
}

impl Track {
    /// True for [`Track::Cadence`].
    pub fn is_cadence(&self) -> bool {
        *self == Track::Cadence
    }
}

/// One planned reminder: a cadence step for an invoice, due at an instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reminder {
    /// Deterministic id (invoice, generation, step).
    pub id: ReminderId,
    /// The invoice chased.
    pub invoice_id: InvoiceId,
    /// The debtor.
    pub client_id: ClientId,
    /// Plan generation this reminder belongs to.
    pub generation: u32,
    /// Which schedule the reminder belongs to (regular cadence unless a promise or plan).
    #[serde(default, skip_serializing_if = "Track::is_cadence")]
    pub track: Track,
    /// Index of the step in its cadence.
    pub step_index: u32,
    /// Name of the step (`courtesy`, `final_notice`).
    pub step_name: String,
    /// Name of the cadence.
    pub cadence: String,
    /// When the step was planned to go out, before retries.
    pub planned_at: Timestamp,
    /// When it is next due (planned time, or the time of the next retry).
    pub fire_at: Timestamp,
    /// Where it is in its life.
    pub state: ReminderState,
    /// Send attempts made so far for this reminder (across channels).
    pub attempts: u32,
    /// Position in the step's channel chain currently being tried.
    pub channel_index: u32,
    /// The last error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Set while waiting for the delivery receipt of the message sent for this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting: Option<AwaitingReceipt>,
    /// A rate-limit slot booked for the channel at `channel_index`: when the reminder fires at
    /// or after it, it is sent without booking again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_slot: Option<Timestamp>,
}

impl Reminder {
    /// A fresh reminder of `invoice` (its current generation) on `track`, step `step_index`
    /// named `step_name` of `cadence`, due at `at`: scheduled, no attempts yet, first channel.
    /// Its id comes from [`ReminderId::for_track`], so the same step of the same generation
    /// always gets the same id.
    pub fn scheduled(
        invoice: &Invoice,
        track: Track,
        step_index: u32,
        step_name: &str,
        cadence: &str,
        at: Timestamp,
    ) -> Reminder {
        Reminder {
            id: ReminderId::for_track(&invoice.id, invoice.generation, &track, step_index),
            invoice_id: invoice.id.clone(),
            client_id: invoice.client_id.clone(),
            generation: invoice.generation,
            track,
            step_index,
            step_name: step_name.to_owned(),
            cadence: cadence.to_owned(),
            planned_at: at,
            fire_at: at,
            state: ReminderState::Scheduled,
            attempts: 0,
            channel_index: 0,
            last_error: None,
            awaiting: None,
            rate_slot: None,
        }
    }
}

/// The message a reminder waits on for a delivery receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitingReceipt {
    /// Adapter that sent it (`twilio`, `whatsapp`).
    pub provider: String,
    /// The provider's message id.
    pub provider_message_id: String,
    /// Channel kind.
    pub kind: String,
    /// Position of the channel in the step's chain.
    pub channel_index: u32,
    /// When it was sent.
    pub since: Timestamp,
}

/// Delivery state of a message as the provider reports it (status callbacks). States only
/// move forward ([`DeliveryState::rank`]): a late `sent` never undoes `delivered`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Accepted by the provider's API, not yet handed to the carrier (`queued`, `accepted`,
    /// `scheduled`, `sending`).
    Accepted,
    /// Handed to the carrier / WhatsApp (`sent`).
    Sent,
    /// Delivered to the handset.
    Delivered,
    /// Read by the recipient (WhatsApp, RCS).
    Read,
    /// The provider could not deliver it (`undelivered`).
    Undelivered,
    /// The provider failed it (`failed`).
    Failed,
}

impl DeliveryState {
    /// Progress order: accepted 0 < sent 1 < delivered/undelivered/failed 2 < read 3. A state
    /// replaces another only with a higher rank, so duplicates and out-of-order callbacks are
    /// harmless, and the terminal states (delivered, undelivered, failed) never flip into
    /// each other.
    pub fn rank(self) -> u8 {
        match self {
            DeliveryState::Accepted => 0,
            DeliveryState::Sent => 1,
            DeliveryState::Delivered | DeliveryState::Undelivered | DeliveryState::Failed => 2,
            DeliveryState::Read => 3,
        }
    }
    /// True for `undelivered` and `failed`.
    pub fn is_failure(self) -> bool {
        matches!(self, DeliveryState::Undelivered | DeliveryState::Failed)
    }
    /// True for `delivered` and `read`.
    pub fn is_delivered(self) -> bool {
        matches!(self, DeliveryState::Delivered | DeliveryState::Read)
    }
    /// The state's name as written in the timeline (`delivered`).
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Accepted => "accepted",
            DeliveryState::Sent => "sent",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Read => "read",
            DeliveryState::Undelivered => "undelivered",
            DeliveryState::Failed => "failed",
        }
    }
}

/// What happened on one communication attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// Accepted by the channel.
    Sent,
    /// Failed; will be retried later.
    RetryScheduled,
    /// Failed for good on this channel.
    Failed,
    /// Not sent (catch-up, closed invoice, no usable channel).
    Skipped,
    /// Cancelled before sending (payment, re-plan).
    Cancelled,
    /// Moved to a later time by the contact window.
    Deferred,
    /// Claimed before a crash; may or may not have been delivered.
    Unknown,
    /// A payment, pause or other event on the invoice (not a message).
    Event,
    /// A delivery receipt from the provider (delivered, read, undelivered, failed).
    Receipt,
    /// A note written by a person (`POST /v1/invoices/{id}/notes`): a call, a visit, what the
    /// debtor said.
    Note,
}

/// One line of the communication log: every attempt, skip and event on an invoice's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// When it happened.
    pub at: Timestamp,
    /// The invoice.
    pub invoice_id: InvoiceId,
    /// The reminder, when the line is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder_id: Option<ReminderId>,
    /// Step name, when about a reminder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Channel used, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Address the message went to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// What happened.
    pub outcome: AttemptOutcome,
    /// Provider's message id, when the channel returned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
    /// The delivery state a receipt reported (outcome `receipt`); on a call task's outcome
    /// line (channel `call`), `delivered` when the call reached the debtor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryState>,
    /// Error or explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_parses_dates_and_instants() {
        assert_eq!(
            Due::parse("2026-03-15").unwrap(),
            Due::Date(jiff::civil::date(2026, 3, 15))
        );
        assert!(matches!(
            Due::parse("2026-03-15T17:00:00Z").unwrap(),
            Due::Instant(_)
        ));
        assert!(matches!(
            Due::parse("2026-03-15T12:00:00-05:00").unwrap(),
            Due::Instant(_)
        ));
        assert!(
            Due::parse("15/03/2026")
                .unwrap_err()
                .contains("neither a date")
        );
        let json = serde_json::to_string(&Due::parse("2026-03-15").unwrap()).unwrap();
        assert_eq!(json, "\"2026-03-15\"");
    }
}
