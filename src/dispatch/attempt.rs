//! One channel of a step's chain: address and opt-out checks, rendering (WhatsApp template or
//! window text), the rate-limit slot, the send, and what its outcome teaches about the address.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt as _;

use jiff::{SignedDuration, Timestamp};

use super::shared::Delivered;
use super::{Dispatcher, jitter, recipient, retry_delay};
use crate::channels::{FailureScope, Outbound, WhatsAppContent};
use crate::domain::{
    Attempt, AttemptOutcome, Client, DeliveryState, IndexLine, Invoice, InvoiceId, OpenLine,
    Reminder, SentMessage,
};
use crate::policy::{LoadedPolicy, Step};
use crate::schedule::segment_followed;
use crate::service::ContactChange;
use crate::templates::context::{
    ArrangementInfo, Statement, StepInfo, TermsInput, message_context_with_terms,
};
use crate::templates::whatsapp::render_whatsapp;

use super::timeline::{count_panic, line, panic_text};

/// Longest a send waits in-task for its rate-limit slot; a later slot puts the reminder back in
/// the due index until then (it is never dropped, and a crash cannot leave it in doubt).
const MAX_INLINE_RATE_WAIT: SignedDuration = SignedDuration::from_secs(1);

/// How many emission intervals of its bucket a send may sleep in-task (see above).
const INLINE_SLOTS: i32 = 8;

/// Most invoices (open or not) a client may have for its messages to carry a statement of the
/// other open ones: past it, reading them all for every message would cost too much.
pub const STATEMENT_MAX_INVOICES: usize = 200;

/// How late a reminder may fire after its booked rate-limit slot and still use it.
const MAX_SLOT_AGE: SignedDuration = SignedDuration::from_secs(60);
/// What trying one channel came to.
pub(super) enum Tried {
    /// Accepted; the record to index when the provider reports delivery.
    Sent(Attempt, Option<SentMessage>),
    /// Rate-limited: put back in the due index until the booked slot.
    /// The booked slot, and when to fire again: a little before the slot (the in-task wait),
    /// so the loop's own latency does not bunch sends that were booked apart.
    Wait(Attempt, Timestamp, Timestamp),
    /// Transient failure: retry after the delay.
    Retry(Attempt, Duration),
    /// Failed or skipped on this channel, with what it teaches about the address.
    Failed(Attempt, Option<ContactChange>),
    /// In doubt: the node that had the message queued for sending died or hung with it, and
    /// `on_unknown = skip`. The step ends `unknown`; no other channel is tried.
    Unknown(Attempt),
}

impl Dispatcher {
    /// The client's other open invoices for the statement templates show (read only): one
    /// range of the client's invoice index, whose entries carry each invoice's open balance,
    /// kept by [`StatementCache`](super::statements::StatementCache) while it has not changed,
    /// so no invoice record is read (an entry written before the index kept lines is
    /// the exception: that invoice is read). The cost is bounded: a client with more than
    /// [`STATEMENT_MAX_INVOICES`] invoices (open or not) gets no statement, so a message never
    /// reads more than that many entries. A read that fails leaves the statement out rather
    /// than holding the message back.
    pub(super) fn statement(&self, invoice: &Invoice, zone: &jiff::tz::TimeZone) -> Statement {
        let read = || -> Result<Option<Statement>, crate::store::StoreError> {
            // One more than the bound tells "too many" without reading the whole index, and
            // without decoding any of it.
            let Some(lines) =
                self.statements
                    .lines(&self.store, &invoice.client_id, STATEMENT_MAX_INVOICES)?
            else {
                return Ok(None);
            };
            // Entries from before the index kept lines: read those invoices.
            let mut fetched: Vec<(InvoiceId, OpenLine)> = Vec::new();
            for (id, line) in lines.iter() {
                if *line != IndexLine::Unknown || *id == invoice.id {
                    continue;
                }
                if let Some(inv) = self.store.invoice(id)? {
                    if inv.client_id == invoice.client_id {
                        if let IndexLine::Open(open) = IndexLine::of(&inv) {
                            fetched.push((inv.id, open));
                        }
                    }
                }
            }
            let open = lines
                .iter()
                .filter_map(|(id, line)| match line {
                    IndexLine::Open(open) => Some((id, open)),
                    IndexLine::Settled | IndexLine::Unknown => None,
                })
                .chain(fetched.iter().map(|(id, open)| (id, open)));
            Ok(Some(Statement::of_lines(open, &invoice.id, zone)))
        };
        match read() {
            Ok(Some(statement)) => statement,
            Ok(None) => {
                tracing::debug!(
                    invoice = %invoice.id, client = %invoice.client_id,
                    "the client has more than {STATEMENT_MAX_INVOICES} invoices; the message goes without its statement"
                );
                Statement::default()
            }
            Err(e) => {
                tracing::warn!(
                    invoice = %invoice.id, error = %e,
                    "cannot read the client's other invoices; the message goes without its statement"
                );
                Statement::default()
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn try_channel(
        &self,
        loaded: &LoadedPolicy,
        r: &Reminder,
        idx: usize,
        invoice: &Invoice,
        client: &Client,
        step: &Step,
        kind: &str,
        zone: &jiff::tz::TimeZone,
        statement: &Statement,
        now: Timestamp,
    ) -> Tried {
        let mut l = line(r, now, AttemptOutcome::Failed, "");
        l.channel = Some(kind.to_owned());
        let Some(to) = recipient(kind, client) else {
            l.outcome = AttemptOutcome::Skipped;
            l.detail = Some(format!("client has no {kind} address"));
            return Tried::Failed(l, None);
        };
        l.recipient = Some(to.clone());
        let Some(channel) = self.routes.get(kind) else {
            l.outcome = AttemptOutcome::Skipped;
            l.detail = Some(format!(
                "no channel is routed for {kind}; add it under [routes] in the daemon config"
            ));
            return Tried::Failed(l, None);
        };
        let contact = match self.store.contact(&to) {
            Ok(c) => c,
            Err(e) => {
                l.outcome = AttemptOutcome::RetryScheduled;
                l.detail = Some(format!("cannot read the state of {to}: {e}"));
                return Tried::Retry(l, Duration::from_secs(self.config.backoff_base_secs));
            }
        };
        if let Some(why) = contact.as_ref().and_then(|c| c.blocked(kind)) {
            l.outcome = AttemptOutcome::Skipped;
            l.detail = Some(why);
            return Tried::Failed(l, None);
        }
        let policy = &loaded.policy;
        let locale = client
            .locale
            .clone()
            .unwrap_or_else(|| policy.defaults.locale.clone());
        let info = StepInfo {
            name: step.name.clone(),
            tone: step.tone.clone(),
            index: r.step_index,
        };
        // Flat late fees count the overdue steps of the regular cadence reached so far.
        let (cadence, reached) = if r.track.is_cadence() {
            (r.cadence.as_str(), Some(r.step_index))
        } else {
            (
                segment_followed(policy, client, invoice).cadence.as_str(),
                invoice.cursor,
            )
        };
        let terms = TermsInput {
            terms: policy.terms.clone(),
            overdue_steps: match (policy.cadences.get(cadence), reached) {
                (Some(c), Some(upto)) => c
                    .steps
                    .iter()
                    .take(upto as usize + 1)
                    .filter(|s| s.offset.approx_minutes() > 0)
                    .count() as u32,
                _ => 0,
            },
            arrangement: ArrangementInfo::for_track(invoice, r.track),
            statement: statement.clone(),
        };
        let ctx = message_context_with_terms(
            client,
            invoice,
            &policy.company,
            &info,
            &locale,
            zone,
            now,
            &terms,
        );
        let whatsapp = if kind == "whatsapp" {
            let session_open = contact
                .as_ref()
                .is_some_and(|c| c.whatsapp_window_open(now));
            let template = match &step.whatsapp {
                Some(spec) => match render_whatsapp(
                    spec,
                    &ctx,
                    invoice,
                    terms.arrangement.as_ref(),
                    &locale,
                    zone,
                ) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        l.detail = Some(e);
                        return Tried::Failed(l, None);
                    }
                },
                None => None,
            };
            if !session_open && template.is_none() {
                l.outcome = AttemptOutcome::Skipped;
                l.detail = Some(format!(
                    "the debtor's 24-hour WhatsApp window is closed and step {:?} maps no approved template; add whatsapp = {{ template = ..., language = ... }} to the step",
                    step.name
                ));
                return Tried::Failed(l, None);
            }
            Some(WhatsAppContent {
                session_open,
                template,
            })
        } else {
            None
        };
        let rendered = match loaded.templates.render(&step.template, &locale, kind, &ctx) {
            Ok(x) => x,
            Err(e) => {
                l.detail = Some(format!(
                    "template {:?} failed to render: {e}",
                    step.template
                ));
                return Tried::Failed(l, None);
            }
        };
        let unsubscribe_url = match (&self.unsubscribe, kind) {
            (Some(links), "email") => Some(links.url(&client.id, &to)),
            _ => None,
        };
        let msg = Outbound {
            reminder_id: r.id,
            invoice_id: r.invoice_id.clone(),
            client_id: r.client_id.clone(),
            kind: kind.to_owned(),
            to: to.clone(),
            to_name: client.name.clone(),
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            step: step.name.clone(),
            tone: step.tone.clone(),
            locale: rendered.locale,
            unsubscribe_url,
            whatsapp,
        };
        if let Some(limiter) = channel.rate_limiter() {
            // A slot booked earlier is used only if it is fresh: a reminder that then waited
            // for the contact window (or a pause) books again, so a night's backlog does not
            // all go out at the window's opening.
            let slot = match r.rate_slot {
                Some(s)
                    if r.channel_index as usize == idx && now.duration_since(s) < MAX_SLOT_AGE =>
                {
                    s
                }
                _ => limiter.reserve(now),
            };
            let wait = slot.duration_since(now);
            // Few sends sleep in-task per bucket (about 8 slots' worth, at most a second), so a
            // busy bucket cannot hold every dispatch slot while other channels wait.
            let inline = MAX_INLINE_RATE_WAIT.min(limiter.interval() * INLINE_SLOTS);
            if wait > inline {
                l.outcome = AttemptOutcome::Deferred;
                l.detail = Some(format!(
                    "rate limit {}: waiting {wait:#} for a send slot, until {slot}",
                    limiter.key()
                ));
                tracing::debug!(reminder = %r.id, limiter = limiter.key(), %slot, "rate limited; rescheduled");
                return Tried::Wait(l, slot, slot - inline);
            }
            if let Ok(d) = Duration::try_from(wait) {
                if !d.is_zero() {
                    tokio::time::sleep(d).await;
                }
            }
        }
        let outcome = match &self.shared {
            Some(shared) => match shared.deliver(channel.name(), &msg).await {
                Delivered::Done(outcome) => outcome,
                Delivered::Unknown(detail) => {
                    l.outcome = AttemptOutcome::Unknown;
                    l.detail = Some(format!("{kind} via {}: {detail}", channel.name()));
                    return Tried::Unknown(l);
                }
            },
            // A panicking adapter must not take the reminder down with it: the panic is this
            // channel's failure, and the chain goes on (a retry would most likely panic again).
            None => {
                let sent = AssertUnwindSafe(async { channel.send(&msg).await })
                    .catch_unwind()
                    .await;
                match sent {
                    Ok(o) => o,
                    Err(panic) => {
                        count_panic();
                        let why = panic_text(panic.as_ref());
                        tracing::error!(
                            reminder = %r.id, invoice = %r.invoice_id, channel = channel.name(), panic = %why,
                            "ALERT: a channel panicked while sending; recorded as failed, trying the next channel"
                        );
                        l.detail = Some(format!(
                            "{kind} via {}: the channel panicked while sending ({why}); recorded as failed",
                            channel.name()
                        ));
                        return Tried::Failed(l, None);
                    }
                }
            }
        };
        match outcome {
            Ok(receipt) => {
                l.outcome = AttemptOutcome::Sent;
                l.provider_message_id = receipt.provider_message_id.clone();
                l.detail = Some(match &receipt.note {
                    Some(n) => format!("sent via {}: {n}", channel.name()),
                    None => format!("sent via {}", channel.name()),
                });
                let sent = match (&receipt.provider_message_id, channel.reports_delivery()) {
                    (Some(id), true) => Some(SentMessage {
                        provider: channel.adapter().to_owned(),
                        provider_message_id: id.clone(),
                        reminder_id: r.id,
                        invoice_id: r.invoice_id.clone(),
                        client_id: r.client_id.clone(),
                        step: step.name.clone(),
                        kind: kind.to_owned(),
                        channel_index: idx as u32,
                        recipient: to,
                        state: DeliveryState::Accepted,
                        sent_at: now,
                        updated_at: now,
                        error: None,
                    }),
                    _ => None,
                };
                Tried::Sent(l, sent)
            }
            Err(e) if e.is_transient() => {
                let delay = retry_delay(
                    r.attempts + 1,
                    Duration::from_secs(self.config.backoff_base_secs),
                    Duration::from_secs(self.config.backoff_max_secs),
                    jitter(),
                    e.retry_after(),
                );
                if let (Some(limiter), Some(after)) = (channel.rate_limiter(), e.retry_after()) {
                    if let Ok(after) = SignedDuration::try_from(after) {
                        limiter.penalize(now + after);
                    }
                }
                l.outcome = AttemptOutcome::RetryScheduled;
                l.detail = Some(format!("{} via {}: {e}", kind, channel.name()));
                Tried::Retry(l, delay)
            }
            Err(e) => {
                l.detail = Some(format!("{} via {}: {e}", kind, channel.name()));
                let source = format!("{} answered: {e}", channel.adapter());
                let change = match e.scope() {
                    Some(FailureScope::OptedOut) => Some(ContactChange::OptOut {
                        kind: kind.to_owned(),
                        source,
                    }),
                    Some(FailureScope::Address) => Some(ContactChange::Unreachable {
                        kind: kind.to_owned(),
                        reason: source,
                    }),
                    Some(FailureScope::Channel) => {
                        tracing::error!(
                            channel = channel.name(), error = %e,
                            "ALERT: the channel itself is failing (credentials, account or configuration); falling back to the next channel"
                        );
                        None
                    }
                    _ => None,
                };
                Tried::Failed(l, change)
            }
        }
    }
}
