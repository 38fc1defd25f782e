//! Durable state in sled: typed trees, key codecs, transactions across trees, the due index, the
//! communication log and group-commit durability.
//!
//! CONTRACT (implemented by the store work; callers rely on exactly this API):
//!
//! ```ignore
//! let store = Store::open(&dir, StoreOptions::default())?;      // schema version checked/written
//! store.client(&id)? -> Option<Client>
//! store.invoice(&id)? -> Option<Invoice>
//! store.reminder(&rid)? -> Option<Reminder>
//! store.timeline(&invoice_id)? -> Vec<Attempt>                   // oldest first
//! store.next_due()? -> Option<Timestamp>                          // earliest key in due index
//! store.claim_due(now, limit)? -> Vec<Reminder>                   // one tx: due entries <= now removed,
//!                                                                 // reminders Scheduled -> Claimed, added to in-flight set
//! store.in_flight()? -> Vec<Reminder>                             // claimed, not yet finished (crash recovery)
//! store.durable().await?                                          // group commit: returns once everything
//!                                                                 // written before the call is flushed
//! store.transaction(|tx| { ... })? -> Result<T, E>                // multi-tree atomic change, see Tx
//! store.pending_count()? -> u64                                   // entries in the due index
//! store.prune_webhooks(older_than)? -> usize
//! store.log_range(from, to)? -> Vec<Attempt>                      // for the daily digest
//! ```
//!
//! Inside a transaction (`Tx`): `client`, `put_client`, `invoice`, `put_invoice`, `reminder`,
//! `schedule(&Reminder)` (writes the reminder and its due entry at `fire_at`), `unschedule(&Reminder)`
//! (removes the due entry for its current `fire_at`), `put_reminder` (record only), `finish(&Reminder)`
//! (writes it and removes it from the in-flight set), `log(&Attempt)`, `webhook_seen(id) -> bool`,
//! `mark_webhook(id, at)`; `abort(e)` to return a domain error. Conflicts retry the closure, so it
//! must not have side effects outside `tx`.
