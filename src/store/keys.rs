//! Key codecs: how each tree's keys are laid out as bytes.
//!
//! Every key type round-trips through [`KeyCodec`]. Keys that carry a time start with an 8-byte
//! big-endian encoding of the instant in microseconds since the Unix epoch with the sign bit
//! flipped, so byte order equals time order, including before 1970.

use jiff::Timestamp;

use crate::domain::{ClientId, EventId, InvoiceId, ReminderId, TaskId};

/// A key that can be stored in a tree: encoded to bytes, decoded back, and shown to humans.
pub(crate) trait KeyCodec: Sized {
    /// The key as bytes.
    fn encode(&self) -> Vec<u8>;
    /// Rebuilds the key from bytes, explaining what is wrong when it cannot.
    fn decode(raw: &[u8]) -> Result<Self, String>;
    /// The key as shown in error messages.
    fn describe(&self) -> String;
}

/// Length of an encoded instant.
pub(crate) const TIME_LEN: usize = 8;
const SIGN_BIT: u64 = 1 << 63;

/// Microseconds since the epoch, rounded down (towards the past), so that `a <= b` implies
/// `micros(a) <= micros(b)`.
pub(crate) fn micros(t: Timestamp) -> i64 {
    let m = t.as_nanosecond().div_euclid(1000);
    // jiff's range (±9999 years) is well inside i64 microseconds; clamp rather than panic.
    i64::try_from(m).unwrap_or(if m < 0 { i64::MIN } else { i64::MAX })
}

/// Encodes a microsecond count so that byte order equals numeric order.
pub(crate) fn encode_micros(m: i64) -> [u8; TIME_LEN] {
    ((m as u64) ^ SIGN_BIT).to_be_bytes()
}

/// Encodes an instant (to microsecond precision, rounded down).
pub(crate) fn encode_time(t: Timestamp) -> [u8; TIME_LEN] {
    encode_micros(micros(t))
}

/// Decodes an instant written by [`encode_time`].
pub(crate) fn decode_time(raw: &[u8]) -> Result<Timestamp, String> {
    let bytes: [u8; TIME_LEN] = raw
        .try_into()
        .map_err(|_| format!("time field is {} bytes, expected {TIME_LEN}", raw.len()))?;
    let m = (u64::from_be_bytes(bytes) ^ SIGN_BIT) as i64;
    Timestamp::from_microsecond(m).map_err(|e| format!("time field out of range: {e}"))
}

/// Shows raw key bytes: as text when they are printable ASCII, else as hex.
pub(crate) fn describe_raw(raw: &[u8]) -> String {
    if !raw.is_empty() && raw.iter().all(|b| b.is_ascii_graphic()) {
        String::from_utf8_lossy(raw).into_owned()
    } else {
        format!("0x{}", hex::encode(raw))
    }
}

fn utf8(raw: &[u8]) -> Result<String, String> {
    String::from_utf8(raw.to_vec()).map_err(|e| format!("key is not UTF-8: {e}"))
}

impl KeyCodec for ClientId {
    fn encode(&self) -> Vec<u8> {
        self.as_str().as_bytes().to_vec()
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        ClientId::new(utf8(raw)?).map_err(|e| e.to_string())
    }
    fn describe(&self) -> String {
        self.to_string()
    }
}

impl KeyCodec for InvoiceId {
    fn encode(&self) -> Vec<u8> {
        self.as_str().as_bytes().to_vec()
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        InvoiceId::new(utf8(raw)?).map_err(|e| e.to_string())
    }
    fn describe(&self) -> String {
        self.to_string()
    }
}

impl KeyCodec for ReminderId {
    fn encode(&self) -> Vec<u8> {
        self.to_bytes().to_vec()
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        let b: [u8; 16] = raw
            .try_into()
            .map_err(|_| format!("reminder id is {} bytes, expected 16", raw.len()))?;
        Ok(ReminderId::from_bytes(b))
    }
    fn describe(&self) -> String {
        self.to_string()
    }
}

/// A key in the `meta` tree (`schema_version`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetaKey(pub(crate) String);

impl KeyCodec for MetaKey {
    fn encode(&self) -> Vec<u8> {
        self.0.as_bytes().to_vec()
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        utf8(raw).map(MetaKey)
    }
    fn describe(&self) -> String {
        self.0.clone()
    }
}

/// A webhook delivery id, as chosen by the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebhookKey(pub(crate) String);

impl KeyCodec for WebhookKey {
    fn encode(&self) -> Vec<u8> {
        self.0.as_bytes().to_vec()
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        utf8(raw).map(WebhookKey)
    }
    fn describe(&self) -> String {
        self.0.clone()
    }
}

/// A UTF-8 text key: an address in `contacts`, `provider:message-id` in `messages`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TextKey(pub(crate) String);

impl KeyCodec for TextKey {
    fn encode(&self) -> Vec<u8> {
        self.0.as_bytes().to_vec()
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        utf8(raw).map(TextKey)
    }
    fn describe(&self) -> String {
        self.0.clone()
    }
}

/// An entry in a client's own timeline: client id ++ 0x00 ++ sequence (8 bytes, big-endian).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientLogKey {
    /// The client.
    pub(crate) client: ClientId,
    /// Store-wide monotonic sequence number.
    pub(crate) seq: u64,
}

impl ClientLogKey {
    /// The prefix shared by every entry of `client`.
    pub(crate) fn prefix(client: &ClientId) -> Vec<u8> {
        let mut k = client.as_str().as_bytes().to_vec();
        k.push(0);
        k
    }
}

impl KeyCodec for ClientLogKey {
    fn encode(&self) -> Vec<u8> {
        let mut k = ClientLogKey::prefix(&self.client);
        k.extend_from_slice(&self.seq.to_be_bytes());
        k
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        if raw.len() < 10 || raw[raw.len() - 9] != 0 {
            return Err("client log key is not <client id> 0x00 <8-byte sequence>".to_owned());
        }
        let (id, rest) = raw.split_at(raw.len() - 9);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&rest[1..]);
        Ok(ClientLogKey {
            client: ClientId::decode(id)?,
            seq: u64::from_be_bytes(seq),
        })
    }
    fn describe(&self) -> String {
        format!("{}#{}", self.client, self.seq)
    }
}

/// An entry of a client's invoice index: client id ++ 0x00 ++ invoice id, with an empty value.
///
/// Ids are 1 to 128 characters of `[A-Za-z0-9._:-]` (see `domain::ids`), never 0x00, so
/// `client ++ 0x00` ([`ClientInvoiceKey::prefix`]) matches exactly one client's entries, and
/// they are in invoice id (byte) order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientInvoiceKey {
    /// The client the invoice belongs to.
    pub(crate) client: ClientId,
    /// The invoice.
    pub(crate) invoice: InvoiceId,
}

impl ClientInvoiceKey {
    /// The prefix shared by every entry of `client`.
    pub(crate) fn prefix(client: &ClientId) -> Vec<u8> {
        let mut k = client.as_str().as_bytes().to_vec();
        k.push(0);
        k
    }
}

impl KeyCodec for ClientInvoiceKey {
    fn encode(&self) -> Vec<u8> {
        let mut k = ClientInvoiceKey::prefix(&self.client);
        k.extend_from_slice(self.invoice.as_str().as_bytes());
        k
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        let Some(sep) = raw.iter().position(|b| *b == 0) else {
            return Err("client invoice key is not <client id> 0x00 <invoice id>".to_owned());
        };
        let (client, rest) = raw.split_at(sep);
        Ok(ClientInvoiceKey {
            client: ClientId::decode(client)?,
            invoice: InvoiceId::decode(&rest[1..])?,
        })
    }
    fn describe(&self) -> String {
        format!("{}/{}", self.client, self.invoice)
    }
}

/// An entry in the due index: fire time (8 bytes) ++ reminder id (16 bytes) ++ invoice id.
///
/// The reminder lives in its invoice's record, so the entry names both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DueKey {
    /// When the reminder fires (microsecond precision).
    pub(crate) at: Timestamp,
    /// Which reminder.
    pub(crate) id: ReminderId,
    /// The invoice it chases.
    pub(crate) invoice: InvoiceId,
}

/// Length of the fixed part of an encoded [`DueKey`] (and of a whole schema-1 due key).
pub(crate) const DUE_LEN: usize = TIME_LEN + 16;

impl DueKey {
    /// A key greater than every due key at `at`'s microsecond and smaller than any later one:
    /// every due key `<=` it fires at or before `at`. (Invoice ids are UTF-8, which never
    /// holds the byte 0xff.)
    pub(crate) fn upper_bound(at: Timestamp) -> Vec<u8> {
        let mut k = encode_time(at).to_vec();
        k.extend_from_slice(&[0xff; 17]);
        k
    }

    /// Decodes a schema-1 due key: fire time ++ reminder id, no invoice.
    pub(crate) fn decode_v1(raw: &[u8]) -> Result<(Timestamp, ReminderId), String> {
        if raw.len() != DUE_LEN {
            return Err(format!(
                "due key is {} bytes, expected {DUE_LEN}",
                raw.len()
            ));
        }
        let at = decode_time(&raw[..TIME_LEN])?;
        let id = ReminderId::decode(&raw[TIME_LEN..])?;
        Ok((at, id))
    }
}

impl KeyCodec for DueKey {
    fn encode(&self) -> Vec<u8> {
        let invoice = self.invoice.as_str().as_bytes();
        let mut k = Vec::with_capacity(DUE_LEN + invoice.len());
        k.extend_from_slice(&encode_time(self.at));
        k.extend_from_slice(&self.id.to_bytes());
        k.extend_from_slice(invoice);
        k
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        if raw.len() <= DUE_LEN {
            return Err(format!(
                "due key is {} bytes, expected more than {DUE_LEN}",
                raw.len()
            ));
        }
        let at = decode_time(&raw[..TIME_LEN])?;
        let id = ReminderId::decode(&raw[TIME_LEN..DUE_LEN])?;
        let invoice = InvoiceId::decode(&raw[DUE_LEN..])?;
        Ok(DueKey { at, id, invoice })
    }
    fn describe(&self) -> String {
        format!("{}/{}/{}", self.at, self.id, self.invoice)
    }
}

/// An entry of the in-flight set: invoice id ++ 0x00 ++ reminder id (16 bytes). Its value is
/// the claimed reminder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InflightKey {
    /// The invoice chased.
    pub(crate) invoice: InvoiceId,
    /// The reminder claimed.
    pub(crate) id: ReminderId,
}

impl KeyCodec for InflightKey {
    fn encode(&self) -> Vec<u8> {
        let mut k = LogKey::prefix(&self.invoice);
        k.extend_from_slice(&self.id.to_bytes());
        k
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        if raw.len() < 18 || raw[raw.len() - 17] != 0 {
            return Err("in-flight key is not <invoice id> 0x00 <16-byte reminder id>".to_owned());
        }
        let (invoice, rest) = raw.split_at(raw.len() - 17);
        Ok(InflightKey {
            invoice: InvoiceId::decode(invoice)?,
            id: ReminderId::decode(&rest[1..])?,
        })
    }
    fn describe(&self) -> String {
        format!("{}/{}", self.invoice, self.id)
    }
}

/// An entry of the payments inbox queue: next attempt time (8 bytes) ++ `provider:event-id`,
/// so the queue is read in due order without sorting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueueKey {
    /// When the event is next due.
    pub(crate) at: Timestamp,
    /// The inbox entry's key.
    pub(crate) key: String,
}

impl QueueKey {
    /// The greatest possible key at `at`'s microsecond.
    pub(crate) fn upper_bound(at: Timestamp) -> Vec<u8> {
        let mut k = encode_time(at).to_vec();
        k.push(0xff);
        k
    }
}

impl KeyCodec for QueueKey {
    fn encode(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(TIME_LEN + self.key.len());
        k.extend_from_slice(&encode_time(self.at));
        k.extend_from_slice(self.key.as_bytes());
        k
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        if raw.len() <= TIME_LEN {
            return Err(format!(
                "inbox queue key is {} bytes, expected more than {TIME_LEN}",
                raw.len()
            ));
        }
        Ok(QueueKey {
            at: decode_time(&raw[..TIME_LEN])?,
            key: utf8(&raw[TIME_LEN..])?,
        })
    }
    fn describe(&self) -> String {
        format!("{}/{}", self.at, self.key)
    }
}

impl KeyCodec for EventId {
    fn encode(&self) -> Vec<u8> {
        self.to_bytes().to_vec()
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        let b: [u8; 16] = raw
            .try_into()
            .map_err(|_| format!("event id is {} bytes, expected 16", raw.len()))?;
        Ok(EventId::from_bytes(b))
    }
    fn describe(&self) -> String {
        self.to_string()
    }
}

/// An entry of the events index: `0x00 ++ next attempt (8 bytes) ++ event id (16)` for a
/// pending event (the due index, read in due order), `0x01 ++ event id` for a failed one
/// (listed newest first). Delivered events have no entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EventIndexKey {
    /// A pending event, due at `at`.
    Due {
        /// When its next attempt is due.
        at: Timestamp,
        /// The event.
        id: EventId,
    },
    /// A failed event.
    Failed(EventId),
}

impl EventIndexKey {
    /// First byte of due entries.
    pub(crate) const DUE: u8 = 0;
    /// First byte of failed entries.
    pub(crate) const FAILED: u8 = 1;

    /// A key greater than every due entry at `at`'s microsecond and smaller than any later one.
    pub(crate) fn due_upper_bound(at: Timestamp) -> Vec<u8> {
        let mut k = vec![Self::DUE];
        k.extend_from_slice(&encode_time(at));
        k.extend_from_slice(&[0xff; 17]);
        k
    }
}

impl KeyCodec for EventIndexKey {
    fn encode(&self) -> Vec<u8> {
        match self {
            EventIndexKey::Due { at, id } => {
                let mut k = Vec::with_capacity(1 + TIME_LEN + 16);
                k.push(Self::DUE);
                k.extend_from_slice(&encode_time(*at));
                k.extend_from_slice(&id.to_bytes());
                k
            }
            EventIndexKey::Failed(id) => {
                let mut k = vec![Self::FAILED];
                k.extend_from_slice(&id.to_bytes());
                k
            }
        }
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        match raw.split_first() {
            Some((&Self::DUE, rest)) if rest.len() == TIME_LEN + 16 => Ok(EventIndexKey::Due {
                at: decode_time(&rest[..TIME_LEN])?,
                id: EventId::decode(&rest[TIME_LEN..])?,
            }),
            Some((&Self::FAILED, rest)) => Ok(EventIndexKey::Failed(EventId::decode(rest)?)),
            _ => Err(format!(
                "events index key is not 0x00 <8-byte time> <16-byte id> nor 0x01 <16-byte id> ({} bytes)",
                raw.len()
            )),
        }
    }
    fn describe(&self) -> String {
        match self {
            EventIndexKey::Due { at, id } => format!("due {at}/{id}"),
            EventIndexKey::Failed(id) => format!("failed {id}"),
        }
    }
}

impl KeyCodec for TaskId {
    fn encode(&self) -> Vec<u8> {
        self.to_bytes().to_vec()
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        let b: [u8; 16] = raw
            .try_into()
            .map_err(|_| format!("task id is {} bytes, expected 16", raw.len()))?;
        Ok(TaskId::from_bytes(b))
    }
    fn describe(&self) -> String {
        self.to_string()
    }
}

/// An entry of the tasks index; only live (open or claimed) tasks have entries, three each
/// at most: `0x00 ++ task id` (every live task: the queue), `0x01 ++ invoice id ++ 0x00 ++
/// task id` (the live tasks of an invoice) and `0x02 ++ client id ++ 0x00 ++ task id` (of a
/// client). Ids never contain 0x00, so `0x01 ++ invoice ++ 0x00` matches exactly one
/// invoice's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TaskIndexKey {
    /// A live task.
    Live(TaskId),
    /// A live task of an invoice.
    Invoice {
        /// The invoice.
        invoice: InvoiceId,
        /// The task.
        id: TaskId,
    },
    /// A live task of a client.
    Client {
        /// The client.
        client: ClientId,
        /// The task.
        id: TaskId,
    },
}

impl TaskIndexKey {
    /// First byte of the queue's entries.
    pub(crate) const LIVE: u8 = 0;
    /// First byte of the per-invoice entries.
    pub(crate) const INVOICE: u8 = 1;
    /// First byte of the per-client entries.
    pub(crate) const CLIENT: u8 = 2;

    /// The prefix of `invoice`'s entries.
    pub(crate) fn invoice_prefix(invoice: &InvoiceId) -> Vec<u8> {
        let mut k = vec![Self::INVOICE];
        k.extend_from_slice(invoice.as_str().as_bytes());
        k.push(0);
        k
    }

    /// The prefix of `client`'s entries.
    pub(crate) fn client_prefix(client: &ClientId) -> Vec<u8> {
        let mut k = vec![Self::CLIENT];
        k.extend_from_slice(client.as_str().as_bytes());
        k.push(0);
        k
    }

    /// The task the entry names.
    pub(crate) fn id(&self) -> TaskId {
        match self {
            TaskIndexKey::Live(id)
            | TaskIndexKey::Invoice { id, .. }
            | TaskIndexKey::Client { id, .. } => *id,
        }
    }
}

impl KeyCodec for TaskIndexKey {
    fn encode(&self) -> Vec<u8> {
        let (mut k, id) = match self {
            TaskIndexKey::Live(id) => (vec![Self::LIVE], id),
            TaskIndexKey::Invoice { invoice, id } => (Self::invoice_prefix(invoice), id),
            TaskIndexKey::Client { client, id } => (Self::client_prefix(client), id),
        };
        k.extend_from_slice(&id.to_bytes());
        k
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        let bad = || {
            format!(
                "tasks index key is not 0x00 <16-byte id>, 0x01 <invoice id> 0x00 <16-byte id> nor 0x02 <client id> 0x00 <16-byte id> ({} bytes)",
                raw.len()
            )
        };
        let (&tag, rest) = raw.split_first().ok_or_else(bad)?;
        if rest.len() < 16 {
            return Err(bad());
        }
        let (head, id) = rest.split_at(rest.len() - 16);
        let id = TaskId::decode(id)?;
        if tag == Self::LIVE {
            return if head.is_empty() {
                Ok(TaskIndexKey::Live(id))
            } else {
                Err(bad())
            };
        }
        let Some((&0, name)) = head.split_last() else {
            return Err(bad());
        };
        match tag {
            Self::INVOICE => Ok(TaskIndexKey::Invoice {
                invoice: InvoiceId::decode(name)?,
                id,
            }),
            Self::CLIENT => Ok(TaskIndexKey::Client {
                client: ClientId::decode(name)?,
                id,
            }),
            _ => Err(bad()),
        }
    }
    fn describe(&self) -> String {
        match self {
            TaskIndexKey::Live(id) => format!("live {id}"),
            TaskIndexKey::Invoice { invoice, id } => format!("invoice {invoice}/{id}"),
            TaskIndexKey::Client { client, id } => format!("client {client}/{id}"),
        }
    }
}

/// An entry in an invoice's timeline: invoice id ++ 0x00 ++ sequence (8 bytes, big-endian).
///
/// Invoice ids never contain 0x00, so `invoice ++ 0x00` is a prefix matching exactly one invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogKey {
    /// The invoice.
    pub(crate) invoice: InvoiceId,
    /// Store-wide monotonic sequence number.
    pub(crate) seq: u64,
}

impl LogKey {
    /// The prefix shared by every timeline entry of `invoice`.
    pub(crate) fn prefix(invoice: &InvoiceId) -> Vec<u8> {
        let mut k = invoice.as_str().as_bytes().to_vec();
        k.push(0);
        k
    }
}

impl KeyCodec for LogKey {
    fn encode(&self) -> Vec<u8> {
        let mut k = LogKey::prefix(&self.invoice);
        k.extend_from_slice(&self.seq.to_be_bytes());
        k
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        if raw.len() < 10 || raw[raw.len() - 9] != 0 {
            return Err("log key is not <invoice id> 0x00 <8-byte sequence>".to_owned());
        }
        let (id, rest) = raw.split_at(raw.len() - 9);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&rest[1..]);
        let invoice = InvoiceId::decode(id)?;
        Ok(LogKey {
            invoice,
            seq: u64::from_be_bytes(seq),
        })
    }
    fn describe(&self) -> String {
        format!("{}#{}", self.invoice, self.seq)
    }
}

/// An entry in schema 1's time-ordered log index (`log_by_time`): time (8 bytes) ++ sequence
/// (8 bytes, big-endian). Schema 2 keeps hourly tallies instead, and the migration drops the
/// index unread; tests use this key to write schema-1 stores.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeKey {
    /// When the attempt happened (microsecond precision).
    pub(crate) at: Timestamp,
    /// The sequence number shared with the [`LogKey`].
    pub(crate) seq: u64,
}

#[cfg(test)]
impl KeyCodec for TimeKey {
    fn encode(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(TIME_LEN + 8);
        k.extend_from_slice(&encode_time(self.at));
        k.extend_from_slice(&self.seq.to_be_bytes());
        k
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        if raw.len() != TIME_LEN + 8 {
            return Err(format!(
                "log_by_time key is {} bytes, expected 16",
                raw.len()
            ));
        }
        let at = decode_time(&raw[..TIME_LEN])?;
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&raw[TIME_LEN..]);
        Ok(TimeKey {
            at,
            seq: u64::from_be_bytes(seq),
        })
    }
    fn describe(&self) -> String {
        format!("{}#{}", self.at, self.seq)
    }
}

/// A tally counter: the start of its UTC hour (8 bytes, microseconds, ordered) ++ the
/// [`Tally`](super::tally::Tally) byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HourKey {
    /// Start of the hour, microseconds since the epoch.
    pub(crate) hour: i64,
    /// The tally's byte.
    pub(crate) tally: u8,
}

impl KeyCodec for HourKey {
    fn encode(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(TIME_LEN + 1);
        k.extend_from_slice(&encode_micros(self.hour));
        k.push(self.tally);
        k
    }
    fn decode(raw: &[u8]) -> Result<Self, String> {
        if raw.len() != TIME_LEN + 1 {
            return Err(format!("tally key is {} bytes, expected 9", raw.len()));
        }
        let mut b = [0u8; TIME_LEN];
        b.copy_from_slice(&raw[..TIME_LEN]);
        Ok(HourKey {
            hour: (u64::from_be_bytes(b) ^ SIGN_BIT) as i64,
            tally: raw[TIME_LEN],
        })
    }
    fn describe(&self) -> String {
        format!("hour {} tally {}", self.hour, self.tally)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(m: i64) -> Timestamp {
        Timestamp::from_microsecond(m).unwrap()
    }

    fn micros_range() -> std::ops::RangeInclusive<i64> {
        Timestamp::MIN.as_microsecond() + 1..=Timestamp::MAX.as_microsecond() - 1
    }

    #[test]
    fn time_round_trips_including_before_1970() {
        for m in [
            0,
            1,
            -1,
            -86_400_000_000 * 365 * 100,
            1_767_225_600_000_000,
            i64::from(i32::MIN),
        ] {
            let t = ts(m);
            assert_eq!(decode_time(&encode_time(t)).unwrap(), t);
        }
        assert!(encode_time(ts(-1)) < encode_time(ts(0)));
        assert!(encode_time(ts(-2)) < encode_time(ts(-1)));
        assert!(decode_time(&[1, 2, 3]).is_err());
    }

    #[test]
    fn sub_microsecond_times_round_down() {
        let t: Timestamp = "1969-12-31T23:59:59.9999995Z".parse().unwrap();
        assert_eq!(micros(t), -1);
        let t: Timestamp = "1970-01-01T00:00:00.0000005Z".parse().unwrap();
        assert_eq!(micros(t), 0);
    }

    #[test]
    fn fixed_keys_round_trip() {
        let id = ReminderId::derive(&InvoiceId::new("INV-1").unwrap(), 0, 3);
        let due = DueKey {
            at: ts(-5_000_000),
            id,
            invoice: InvoiceId::new("INV-1").unwrap(),
        };
        assert_eq!(DueKey::decode(&due.encode()).unwrap(), due);
        assert!(DueKey::decode(&due.encode()[..DUE_LEN]).is_err());
        assert!(due.encode() < DueKey::upper_bound(due.at));
        assert_eq!(
            DueKey::decode_v1(&due.encode()[..DUE_LEN]).unwrap(),
            (due.at, id)
        );
        let fl = InflightKey {
            invoice: InvoiceId::new("INV-1").unwrap(),
            id,
        };
        assert_eq!(InflightKey::decode(&fl.encode()).unwrap(), fl);
        assert!(InflightKey::decode(&fl.encode()[..fl.encode().len() - 1]).is_err());

        let log = LogKey {
            invoice: InvoiceId::new("INV-1").unwrap(),
            seq: 42,
        };
        assert_eq!(LogKey::decode(&log.encode()).unwrap(), log);
        assert!(log.encode().starts_with(&LogKey::prefix(&log.invoice)));
        assert!(LogKey::decode(b"INV-1").is_err());

        let tk = TimeKey {
            at: ts(123),
            seq: 7,
        };
        assert_eq!(TimeKey::decode(&tk.encode()).unwrap(), tk);

        let c = ClientId::new("c-1").unwrap();
        assert_eq!(ClientId::decode(&c.encode()).unwrap(), c);

        let ci = ClientInvoiceKey {
            client: c.clone(),
            invoice: InvoiceId::new("INV-1").unwrap(),
        };
        assert_eq!(ci.encode(), b"c-1\0INV-1");
        assert_eq!(ClientInvoiceKey::decode(&ci.encode()).unwrap(), ci);
        assert!(ci.encode().starts_with(&ClientInvoiceKey::prefix(&c)));
        for bad in [
            &b"c-1"[..],
            b"c-1\0",
            b"\0INV-1",
            b"c-1\0INV\x001",
            b"c 1\0INV-1",
        ] {
            assert!(ClientInvoiceKey::decode(bad).is_err(), "{bad:?}");
        }
        assert!(ClientId::decode(b"bad key").is_err());
        assert_eq!(ReminderId::decode(&id.encode()).unwrap(), id);
        assert_eq!(describe_raw(b"c-1"), "c-1");
        assert_eq!(describe_raw(&[0, 255]), "0x00ff");
    }

    #[test]
    fn task_index_keys_round_trip_and_group_by_invoice_and_client() {
        let id = |m: i64, seq: u64| TaskId::new(ts(m), seq);
        let inv = InvoiceId::new("FV-1").unwrap();
        let cli = ClientId::new("c-1").unwrap();
        for k in [
            TaskIndexKey::Live(id(1, 0)),
            TaskIndexKey::Invoice {
                invoice: inv.clone(),
                id: id(2, 0x00ff),
            },
            TaskIndexKey::Client {
                client: cli.clone(),
                id: TaskId::from_bytes([0; 16]),
            },
        ] {
            assert_eq!(TaskIndexKey::decode(&k.encode()).unwrap(), k);
        }
        let k = TaskIndexKey::Invoice {
            invoice: inv.clone(),
            id: id(3, 3),
        }
        .encode();
        assert!(k.starts_with(&TaskIndexKey::invoice_prefix(&inv)));
        let other = InvoiceId::new("FV-10").unwrap();
        let k10 = TaskIndexKey::Invoice {
            invoice: other,
            id: id(3, 3),
        }
        .encode();
        assert!(!k10.starts_with(&TaskIndexKey::invoice_prefix(&inv)));
        for bad in [&[][..], &[0, 1, 2], &[3; 17], &[1; 17], &[0; 18]] {
            assert!(TaskIndexKey::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn event_index_keys_round_trip_and_order_due_entries_by_time() {
        let id = |m: i64, seq: u64| EventId::new(ts(m), seq);
        for k in [
            EventIndexKey::Due {
                at: ts(-5),
                id: id(1, 2),
            },
            EventIndexKey::Failed(id(-1, 0)),
        ] {
            assert_eq!(EventIndexKey::decode(&k.encode()).unwrap(), k);
        }
        let early = EventIndexKey::Due {
            at: ts(-5),
            id: id(9, 9),
        }
        .encode();
        let late = EventIndexKey::Due {
            at: ts(5),
            id: id(1, 1),
        }
        .encode();
        assert!(early < late);
        assert!(late <= EventIndexKey::due_upper_bound(ts(5)));
        assert!(late > EventIndexKey::due_upper_bound(ts(4)));
        assert!(
            EventIndexKey::due_upper_bound(Timestamp::MAX)
                < EventIndexKey::Failed(id(0, 0)).encode()
        );
        for bad in [&[][..], &[0, 1, 2], &[2; 17], &[1; 5]] {
            assert!(EventIndexKey::decode(bad).is_err(), "{bad:?}");
        }
        assert_eq!(EventId::decode(&id(3, 4).encode()).unwrap(), id(3, 4));
    }

    proptest! {
        #[test]
        fn due_keys_round_trip(m in micros_range(), id in any::<[u8; 16]>()) {
            let k = DueKey { at: ts(m), id: ReminderId::from_bytes(id), invoice: InvoiceId::new("i-1").unwrap() };
            prop_assert_eq!(DueKey::decode(&k.encode()).unwrap(), k.clone());
            prop_assert!(k.encode() < DueKey::upper_bound(k.at));
        }

        #[test]
        fn due_key_order_is_time_then_id(
            a in micros_range(), b in micros_range(),
            ia in any::<[u8; 16]>(), ib in any::<[u8; 16]>(),
        ) {
            let inv = InvoiceId::new("i-1").unwrap();
            let ka = DueKey { at: ts(a), id: ReminderId::from_bytes(ia), invoice: inv.clone() }.encode();
            let kb = DueKey { at: ts(b), id: ReminderId::from_bytes(ib), invoice: inv }.encode();
            prop_assert_eq!(ka.cmp(&kb), (a, ia).cmp(&(b, ib)));
        }

        #[test]
        fn time_key_order_is_time_then_seq(
            a in micros_range(), b in micros_range(), sa in any::<u64>(), sb in any::<u64>(),
        ) {
            let ka = TimeKey { at: ts(a), seq: sa }.encode();
            let kb = TimeKey { at: ts(b), seq: sb }.encode();
            prop_assert_eq!(ka.cmp(&kb), (a, sa).cmp(&(b, sb)));
        }

        #[test]
        fn client_invoice_keys_round_trip_and_order_by_client_then_invoice(
            ca in "[A-Za-z0-9._:-]{1,128}", cb in "[A-Za-z0-9._:-]{1,128}",
            ia in "[A-Za-z0-9._:-]{1,128}", ib in "[A-Za-z0-9._:-]{1,128}",
        ) {
            let key = |c: &str, i: &str| ClientInvoiceKey {
                client: ClientId::new(c).unwrap(),
                invoice: InvoiceId::new(i).unwrap(),
            };
            let (a, b) = (key(&ca, &ia), key(&cb, &ib));
            prop_assert_eq!(ClientInvoiceKey::decode(&a.encode()).unwrap(), a.clone());
            // One client's prefix never matches another client's entries.
            let prefix = ClientInvoiceKey::prefix(&a.client);
            prop_assert_eq!(b.encode().starts_with(&prefix), ca == cb);
            if ca == cb {
                prop_assert_eq!(a.encode().cmp(&b.encode()), ia.as_bytes().cmp(ib.as_bytes()));
            }
        }

        #[test]
        fn log_keys_round_trip(id in "[A-Za-z0-9._:-]{1,128}", seq in any::<u64>()) {
            let k = LogKey { invoice: InvoiceId::new(id).unwrap(), seq };
            prop_assert_eq!(LogKey::decode(&k.encode()).unwrap(), k);
        }
    }
}
