//! The queue through which the leader hands rendered messages to every node
//! (`[store] delivery = "shared"`): table `sends`, one row per message.
//!
//! - The leader plans, renders and rate-limits each message as before, then inserts it
//!   ([`SendQueue::enqueue`], `state` 0) under its epoch and a sequence number of its own, and
//!   waits for the row's result.
//! - Every node claims ready rows with `SELECT … FOR UPDATE SKIP LOCKED`
//!   ([`SendQueue::claim`]): the row takes the node's name and a lease (`lease_until`, the
//!   database's clock, so the nodes' clocks do not matter), `state` 1. Two nodes never claim
//!   the same row. A node renews its leases while it sends ([`SendQueue::renew`]).
//! - A row whose lease ran out (its node died or hung) is ready again, and the node that claims
//!   it sees who held it before ([`ClaimedSend::previous`]): the message is in doubt, and that
//!   node settles it by `on_unknown`.
//! - A node finishes a message ([`SendQueue::complete`]) only while the row is still its own:
//!   the row is deleted, and its result goes to the leader in the same transaction, as the
//!   payload of a `plazo_sends_done` notification (`epoch seq result`). A leader whose
//!   connection broke may have missed some: it asks which of its rows are gone
//!   ([`SendQueue::existing`]) and takes those as in doubt.
//!
//! Rows carry the epoch of the leader that queued them, and nodes claim only rows of the
//! current leader's epoch: once a standby takes over, the old leader's rows are never claimed
//! again (its reminders in flight are settled by the new leader's recovery) and the new leader
//! deletes them ([`SendQueue::clear_other_epochs`]).
//!
//! Notifications wake the nodes at once when rows are queued (`plazo_sends`); they also look
//! every `poll`, which is when they take over expired leases. Fresh rows are found through the
//! partial index `sends_queued`, so a claim does not wade through the dead rows of a burst.

use std::collections::HashMap;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator as _;
use thiserror::Error;

use super::{PgConfig, pg_text};

/// The notification channel a queued message is announced on.
pub const QUEUED: &str = "plazo_sends";
/// The notification channel a written result is announced on.
pub const DONE: &str = "plazo_sends_done";

const ENQUEUE: &str = "WITH ins AS (
        INSERT INTO sends (epoch, seq, channel, payload)
        SELECT $1, s, c, p FROM unnest($2::bigint[], $3::text[], $4::bytea[]) AS v(s, c, p)
        RETURNING 1)
    SELECT count(*) FROM ins, pg_notify('plazo_sends', '')";

const EXISTING: &str = "SELECT seq FROM sends WHERE epoch = $1 AND seq = ANY($2)";

const CLAIM_QUEUED: &str = "WITH picked AS (
        SELECT epoch, seq FROM sends
        WHERE epoch = (SELECT epoch FROM leader WHERE id = 1)
          AND state = 0
          AND channel = ANY($2)
        ORDER BY epoch, seq
        LIMIT $3
        FOR UPDATE SKIP LOCKED)
    UPDATE sends s
    SET state = 1, node = $1, claims = s.claims + 1,
        lease_until = clock_timestamp() + $4::bigint * interval '1 millisecond'
    FROM picked
    WHERE s.epoch = picked.epoch AND s.seq = picked.seq
    RETURNING s.epoch, s.seq, s.channel, s.payload, NULL::text";

const CLAIM_EXPIRED: &str = "WITH picked AS (
        SELECT epoch, seq, node AS previous FROM sends
        WHERE epoch = (SELECT epoch FROM leader WHERE id = 1)
          AND state = 1 AND lease_until < clock_timestamp()
          AND channel = ANY($2)
        ORDER BY epoch, seq
        LIMIT $3
        FOR UPDATE SKIP LOCKED)
    UPDATE sends s
    SET node = $1, claims = s.claims + 1,
        lease_until = clock_timestamp() + $4::bigint * interval '1 millisecond'
    FROM picked
    WHERE s.epoch = picked.epoch AND s.seq = picked.seq
    RETURNING s.epoch, s.seq, s.channel, s.payload, picked.previous";

const COMPLETE: &str = "WITH done AS (
        DELETE FROM sends s
        USING unnest($2::bigint[], $3::bigint[], $4::text[]) AS v(e, q, r)
        WHERE s.epoch = v.e AND s.seq = v.q AND s.node = $1 AND s.state = 1
        RETURNING s.epoch, s.seq, v.r)
    SELECT count(*) FROM done,
        LATERAL pg_notify('plazo_sends_done', done.epoch || ' ' || done.seq || ' ' || done.r) AS n";

const RENEW: &str = "UPDATE sends
    SET lease_until = clock_timestamp() + $2::bigint * interval '1 millisecond'
    WHERE node = $1 AND state = 1";

const CLEAR: &str = "DELETE FROM sends WHERE epoch <> $1";

/// Why the queue could not be used.
#[derive(Debug, Error)]
pub enum SendQueueError {
    /// The URL could not be parsed, or the database could not be reached.
    #[error("cannot connect to PostgreSQL for the send queue: {0}")]
    Connect(String),
    /// A query failed.
    #[error("the send queue (PostgreSQL): {0}")]
    Database(String),
}

/// A queued message as this node claimed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedSend {
    /// The epoch of the leader that queued it.
    pub epoch: i64,
    /// Its number within that epoch.
    pub seq: i64,
    /// The name of the channel the leader chose (`[channels.NAME]`).
    pub channel: String,
    /// The message, as the leader encoded it.
    pub payload: Vec<u8>,
    /// The node whose lease on it ran out, when it was claimed before: the message is in doubt.
    pub previous: Option<String>,
}

/// One connection to the queue, reconnecting on the next call after it breaks. Blocking: use
/// it on a thread of its own, never on a tokio worker.
pub struct SendQueue {
    config: PgConfig,
    node: String,
    listen: Option<&'static str>,
    conn: Option<Connected>,
    connections: u64,
}

struct Connected {
    client: postgres::Client,
    statements: HashMap<&'static str, postgres::Statement>,
}

impl SendQueue {
    /// Connects as `node`, applies pending migrations (the table may not exist yet when a
    /// standby starts first), and listens on `listen` ([`QUEUED`] or [`DONE`]) if given.
    ///
    /// # Errors
    ///
    /// A URL that does not parse, a database out of reach, or one from a newer plazo.
    pub fn connect(
        url: &str,
        node: &str,
        listen: Option<&'static str>,
    ) -> Result<SendQueue, SendQueueError> {
        let config = super::parse_url(url).map_err(|e| SendQueueError::Connect(e.to_string()))?;
        super::migrate_now(&config).map_err(|e| SendQueueError::Connect(e.to_string()))?;
        let mut queue = SendQueue {
            config,
            node: node.to_owned(),
            listen,
            conn: None,
            connections: 0,
        };
        queue.connected()?;
        Ok(queue)
    }

    /// How many connections this queue has opened: when it grows, notifications sent while
    /// none was open were lost.
    pub fn connections(&self) -> u64 {
        self.connections
    }

    /// This node's name, as claims record it.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn connected(&mut self) -> Result<&mut Connected, SendQueueError> {
        if self.conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            self.conn = None;
        }
        if self.conn.is_none() {
            let mut client = self
                .config
                .connect()
                .map_err(|e| SendQueueError::Connect(e.to_string()))?;
            if let Some(channel) = self.listen {
                client
                    .batch_execute(&format!("LISTEN {channel}"))
                    .map_err(|e| SendQueueError::Database(pg_text(&e)))?;
            }
            self.conn = Some(Connected {
                client,
                statements: HashMap::new(),
            });
            self.connections += 1;
        }
        self.conn
            .as_mut()
            .ok_or_else(|| SendQueueError::Connect("no connection".into()))
    }

    /// Runs `sql` (prepared once per connection) with `params`.
    fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, SendQueueError> {
        let conn = self.connected()?;
        let run = |conn: &mut Connected| -> Result<Vec<postgres::Row>, postgres::Error> {
            let statement = match conn.statements.get(sql) {
                Some(s) => s.clone(),
                None => {
                    let s = conn.client.prepare(sql)?;
                    conn.statements.insert(sql, s.clone());
                    s
                }
            };
            conn.client.query(&statement, params)
        };
        match run(conn) {
            Ok(rows) => Ok(rows),
            Err(e) => {
                if conn.client.is_closed() {
                    self.conn = None;
                }
                Err(SendQueueError::Database(pg_text(&e)))
            }
        }
    }

    /// Queues messages under `epoch`: `(seq, channel name, payload)` each, in one statement,
    /// and wakes the nodes.
    ///
    /// # Errors
    ///
    /// When the statement fails. The rows may then be queued or not: ask [`Self::existing`].
    pub fn enqueue(
        &mut self,
        epoch: i64,
        rows: &[(i64, String, Vec<u8>)],
    ) -> Result<(), SendQueueError> {
        let seqs: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let channels: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
        let payloads: Vec<&[u8]> = rows.iter().map(|r| r.2.as_slice()).collect();
        self.query(ENQUEUE, &[&epoch, &seqs, &channels, &payloads])
            .map(|_| ())
    }

    /// Which of `seqs` are in the queue under `epoch` (after a failed [`Self::enqueue`]).
    ///
    /// # Errors
    ///
    /// When the query fails.
    pub fn existing(&mut self, epoch: i64, seqs: &[i64]) -> Result<Vec<i64>, SendQueueError> {
        let rows = self.query(EXISTING, &[&epoch, &seqs])?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Claims up to `limit` messages of the current leader's epoch for channels this node
    /// routes, oldest first, each with a lease of `lease`: those whose lease ran out first when
    /// `expired` (they carry their previous node), then fresh ones.
    ///
    /// # Errors
    ///
    /// When a statement fails (whether it committed is then unknown: rows it claimed are
    /// settled in doubt once their lease runs out).
    pub fn claim(
        &mut self,
        channels: &[String],
        lease: Duration,
        limit: usize,
        expired: bool,
    ) -> Result<Vec<ClaimedSend>, SendQueueError> {
        let node = self.node.clone();
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let mut claimed = Vec::new();
        let statements: &[&'static str] = if expired {
            &[CLAIM_EXPIRED, CLAIM_QUEUED]
        } else {
            &[CLAIM_QUEUED]
        };
        for sql in statements {
            let left = i64::try_from(limit.saturating_sub(claimed.len())).unwrap_or(i64::MAX);
            if left == 0 {
                break;
            }
            let rows = self.query(sql, &[&node, &channels, &left, &lease_ms])?;
            claimed.extend(rows.iter().map(|r| ClaimedSend {
                epoch: r.get(0),
                seq: r.get(1),
                channel: r.get(2),
                payload: r.get(3),
                previous: r.get(4),
            }));
        }
        claimed.sort_by_key(|c| (c.epoch, c.seq));
        Ok(claimed)
    }

    /// Finishes messages: `(epoch, seq, result)` each, for the rows this node still holds,
    /// which are deleted, their results notified to the leader in the same transaction. Returns
    /// how many rows were still this node's (a row another node took over meanwhile is not).
    ///
    /// # Errors
    ///
    /// When the statement fails.
    pub fn complete(&mut self, done: &[(i64, i64, String)]) -> Result<usize, SendQueueError> {
        let node = self.node.clone();
        let epochs: Vec<i64> = done.iter().map(|d| d.0).collect();
        let seqs: Vec<i64> = done.iter().map(|d| d.1).collect();
        let results: Vec<&str> = done.iter().map(|d| d.2.as_str()).collect();
        let rows = self.query(COMPLETE, &[&node, &epochs, &seqs, &results])?;
        let n: i64 = rows.first().map_or(0, |r| r.get(0));
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Extends the lease of every message this node holds to `lease` from now.
    ///
    /// # Errors
    ///
    /// When the statement fails.
    pub fn renew(&mut self, lease: Duration) -> Result<(), SendQueueError> {
        let node = self.node.clone();
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        self.query(RENEW, &[&node, &lease_ms]).map(|_| ())
    }

    /// The messages earlier leaders (any epoch but `epoch`) queued that no node claimed: no
    /// node may claim them any more, so they were never sent.
    ///
    /// # Errors
    ///
    /// When the query fails.
    pub fn unclaimed_of_other_epochs(
        &mut self,
        epoch: i64,
    ) -> Result<Vec<Vec<u8>>, SendQueueError> {
        const UNCLAIMED: &str = "SELECT payload FROM sends WHERE epoch <> $1 AND state = 0";
        let rows = self.query(UNCLAIMED, &[&epoch])?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Deletes every row not of `epoch` (left by earlier leaders). Returns how many.
    ///
    /// # Errors
    ///
    /// When the statement fails.
    pub fn clear_other_epochs(&mut self, epoch: i64) -> Result<u64, SendQueueError> {
        let conn = self.connected()?;
        conn.client
            .execute(CLEAR, &[&epoch])
            .map_err(|e| SendQueueError::Database(pg_text(&e)))
    }

    /// Waits up to `timeout` for a notification on the channel this connection listens on,
    /// and returns the payloads of all that came (empty when none did).
    ///
    /// # Errors
    ///
    /// When the connection breaks (notifications sent meanwhile are lost).
    pub fn wait(&mut self, timeout: Duration) -> Result<Vec<String>, SendQueueError> {
        let conn = self.connected()?;
        let waited = {
            let mut notifications = conn.client.notifications();
            let mut payloads = Vec::new();
            let first = notifications.timeout_iter(timeout).next();
            match first {
                Ok(Some(n)) => {
                    payloads.push(n.payload().to_owned());
                    // Those already received, without waiting.
                    let mut rest = notifications.iter();
                    while let Ok(Some(n)) = rest.next() {
                        payloads.push(n.payload().to_owned());
                    }
                    Ok(payloads)
                }
                Ok(None) => Ok(payloads),
                Err(e) => Err(e),
            }
        };
        waited.map_err(|e| {
            self.conn = None;
            SendQueueError::Database(pg_text(&e))
        })
    }
}

/// A result notification's payload (`epoch seq result`), split.
pub fn parse_done(payload: &str) -> Option<(i64, i64, &str)> {
    let mut parts = payload.splitn(3, ' ');
    let epoch = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    Some((epoch, seq, parts.next()?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeSet;

    use super::*;

    fn queue(url: &str, node: &str, listen: Option<&'static str>) -> SendQueue {
        SendQueue::connect(url, node, listen).unwrap()
    }

    fn rows(seqs: std::ops::Range<i64>, channel: &str) -> Vec<(i64, String, Vec<u8>)> {
        seqs.map(|s| (s, channel.to_owned(), s.to_be_bytes().to_vec()))
            .collect()
    }

    /// The epoch migrations leave in `leader` (no node has led yet).
    const EPOCH: i64 = 0;

    const LONG: Duration = Duration::from_secs(60);

    #[test]
    fn nodes_claiming_at_once_never_take_the_same_message() {
        let Some(url) = super::super::testing::new_database().unwrap() else {
            return;
        };
        let mut leader = queue(&url, "leader", None);
        leader.enqueue(EPOCH, &rows(0..400, "out")).unwrap();
        // Another channel's and an older epoch's messages are nobody's here.
        leader.enqueue(EPOCH, &rows(400..410, "smtp")).unwrap();
        leader.enqueue(EPOCH - 1, &rows(0..10, "out")).unwrap();
        let claimers: Vec<_> = (0..3)
            .map(|i| {
                let url = url.clone();
                std::thread::spawn(move || {
                    let mut q = queue(&url, &format!("node-{i}"), None);
                    let mut mine = Vec::new();
                    loop {
                        let got = q.claim(&["out".to_owned()], LONG, 7, i == 0).unwrap();
                        if got.is_empty() {
                            return mine;
                        }
                        for c in got {
                            assert_eq!(c.previous, None);
                            assert_eq!(c.channel, "out");
                            assert_eq!(c.payload, c.seq.to_be_bytes().to_vec());
                            mine.push((c.epoch, c.seq));
                        }
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        let mut per_node = Vec::new();
        for c in claimers {
            let mine = c.join().unwrap();
            per_node.push(mine.len());
            all.extend(mine);
        }
        let distinct: BTreeSet<_> = all.iter().copied().collect();
        assert_eq!(all.len(), 400, "claimed twice: {per_node:?}");
        assert_eq!(distinct, (0..400).map(|s| (EPOCH, s)).collect());
    }

    #[test]
    fn an_expired_lease_is_taken_over_in_doubt_and_a_live_one_is_not() {
        let Some(url) = super::super::testing::new_database().unwrap() else {
            return;
        };
        let mut leader = queue(&url, "leader", Some(DONE));
        leader.enqueue(EPOCH, &rows(1..3, "out")).unwrap();
        let out = ["out".to_owned()];
        let mut a = queue(&url, "node-a", None);
        let mut b = queue(&url, "node-b", None);
        // a takes message 1 with a short lease, message 2 with a long one.
        let first = a.claim(&out, Duration::from_millis(200), 1, false).unwrap();
        assert_eq!(first[0].seq, 1);
        let second = a.claim(&out, LONG, 1, false).unwrap();
        assert_eq!(second[0].seq, 2);
        assert!(b.claim(&out, LONG, 10, true).unwrap().is_empty());
        std::thread::sleep(Duration::from_millis(300));
        // Expired leases are looked for only when asked.
        assert!(b.claim(&out, LONG, 10, false).unwrap().is_empty());
        // a "died": b takes message 1 over, knowing who held it; message 2 stays a's.
        let taken = b.claim(&out, LONG, 10, true).unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(
            (taken[0].seq, taken[0].previous.as_deref()),
            (1, Some("node-a"))
        );
        // a's late result for message 1 is not taken; b's is, and a's for message 2.
        assert_eq!(a.complete(&[(EPOCH, 1, "late".into())]).unwrap(), 0);
        assert_eq!(b.complete(&[(EPOCH, 1, "from b".into())]).unwrap(), 1);
        assert_eq!(a.complete(&[(EPOCH, 2, "from a".into())]).unwrap(), 1);
        // The results reach the leader in notifications, and the rows are gone.
        let mut results = Vec::new();
        for _ in 0..50 {
            results.extend(leader.wait(Duration::from_millis(100)).unwrap());
            if results.len() == 2 {
                break;
            }
        }
        let mut results: Vec<_> = results.iter().map(|p| parse_done(p).unwrap()).collect();
        results.sort();
        assert_eq!(results, vec![(EPOCH, 1, "from b"), (EPOCH, 2, "from a")]);
        assert!(leader.existing(EPOCH, &[1, 2]).unwrap().is_empty());
        assert_eq!(leader.connections(), 1);
    }

    #[test]
    fn renewed_leases_hold_and_a_new_leader_clears_the_old_ones_messages() {
        let Some(url) = super::super::testing::new_database().unwrap() else {
            return;
        };
        let mut leader = queue(&url, "leader", None);
        leader.enqueue(EPOCH, &rows(1..2, "out")).unwrap();
        let out = ["out".to_owned()];
        let mut a = queue(&url, "node-a", None);
        let mut b = queue(&url, "node-b", Some(QUEUED));
        assert_eq!(
            a.claim(&out, Duration::from_millis(300), 5, false)
                .unwrap()
                .len(),
            1
        );
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(150));
            a.renew(Duration::from_millis(300)).unwrap();
            assert!(b.claim(&out, LONG, 5, true).unwrap().is_empty());
        }
        // The wake-up: b hears of a message queued by the leader at once.
        let _ = b.wait(Duration::ZERO).unwrap();
        leader.enqueue(EPOCH, &rows(2..3, "out")).unwrap();
        assert!(!b.wait(Duration::from_secs(5)).unwrap().is_empty());
        assert_eq!(leader.existing(EPOCH, &[1, 2, 3]).unwrap().len(), 2);
        // A takeover: the new epoch's leader finds the old epoch's message nobody claimed...
        assert_eq!(
            leader.unclaimed_of_other_epochs(EPOCH + 1).unwrap(),
            vec![2i64.to_be_bytes().to_vec()]
        );
        assert!(leader.unclaimed_of_other_epochs(EPOCH).unwrap().is_empty());
        // ... and deletes the old epoch's rows, claimed or not.
        assert_eq!(leader.clear_other_epochs(EPOCH + 1).unwrap(), 2);
        assert!(leader.existing(EPOCH, &[1, 2]).unwrap().is_empty());
    }

    #[test]
    fn a_result_payload_splits_into_epoch_seq_and_result() {
        assert_eq!(
            parse_done("7 12 {\"result\":\"sent\"}"),
            Some((7, 12, "{\"result\":\"sent\"}"))
        );
        assert_eq!(parse_done("7 x {}"), None);
        assert_eq!(parse_done("7"), None);
    }
}
