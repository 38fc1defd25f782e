//! The slot (tree number) of each record tree in the writer, in the order of
//! `Trees`; in the keyspace, each record's key starts with its slot byte. Also the name of the
//! keyspace's sled tree ([`KEYSPACE`]). A leaf: the writer, the transactions, the backends and
//! the migrations all lay keys out by it.

pub(crate) const CLIENTS: u8 = 0;
pub(crate) const INVOICES: u8 = 1;
/// Schema 1's reminder records; since schema 2 reminders live in their invoice's record
/// ([`InvoiceRecord`](super::records::InvoiceRecord)) and this slot is only used while migrating.
pub(crate) const REMINDERS: u8 = 2;
pub(crate) const DUE: u8 = 3;
pub(crate) const INFLIGHT: u8 = 4;
pub(crate) const LOG: u8 = 5;
/// Schema 1's `log_by_time` index; since schema 2, the hourly tallies.
pub(crate) const TALLIES: u8 = 6;
pub(crate) const WEBHOOKS: u8 = 7;
pub(crate) const CONTACTS: u8 = 8;
pub(crate) const MESSAGES: u8 = 9;
pub(crate) const CLIENT_LOG: u8 = 10;
pub(crate) const INBOX: u8 = 11;
pub(crate) const INBOX_QUEUE: u8 = 12;
pub(crate) const NUMBERS: u8 = 13;
/// The readiness probe's key, rewritten by each probe.
pub(crate) const PROBE: u8 = 14;
/// Each client's invoices (schema 3): client id ++ 0x00 ++ invoice id → the invoice's
/// `IndexLine` (empty for entries written before the index kept lines).
pub(crate) const CLIENT_INVOICES: u8 = 15;
/// The events outbox: event id (16 bytes) → the event.
pub(crate) const EVENTS: u8 = 16;
/// The events index: pending events by due time, failed ones (`keys::EventIndexKey`).
pub(crate) const EVENTS_INDEX: u8 = 17;
/// Tasks for people: task id (16 bytes) → the task.
pub(crate) const TASKS: u8 = 18;
/// The tasks index: live tasks, by invoice and by client (`keys::TaskIndexKey`).
pub(crate) const TASKS_INDEX: u8 = 19;

/// The slots whose keys a command reads by prefix
/// ([`Ctx::scan_prefix`](super::overlay::Ctx::scan_prefix)): the writer keeps the
/// pending writes of these slots in key order too, so such a read does not look at every
/// pending write of the batch.
pub(crate) const SCANNED: &[u8] = &[CLIENT_INVOICES, TASKS_INDEX];

/// Name of the sled tree holding every record (since schema 2): the keyspace.
pub(crate) const KEYSPACE: &str = "records";
