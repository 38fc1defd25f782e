//! The task record (calls to make, replies to review).

use serde::{Deserialize, Serialize};

use super::prim::{self, BadField, StoredDecimal, StoredTime};
use crate::domain::{Task, TaskId, TaskKind, TaskResult, TaskState};

/// [`Task`] on disk, layout version 1: one byte of version, then these fields in this order
/// (postcard, no field names). Never reorder or remove fields, nor variants of the enums it
/// uses; a new field means a new version byte (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredTask {
    /// The id's 16 bytes (creation instant, sequence).
    id: [u8; 16],
    kind: StoredTaskKind,
    invoice_id: Option<String>,
    client_id: String,
    segment: String,
    reason: String,
    state: StoredTaskState,
    priority: StoredDecimal,
    due_at: StoredTime,
    attempt: u32,
    agent: Option<String>,
    claimed_at: Option<StoredTime>,
    result: Option<StoredTaskResult>,
    note: Option<String>,
    created_at: StoredTime,
    updated_at: StoredTime,
}

/// [`TaskKind`] on disk (variant index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredTaskKind {
    Call,
    Review,
}

/// [`TaskState`] on disk (variant index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredTaskState {
    Open,
    Claimed,
    Done,
    Cancelled,
}

/// [`TaskResult`] on disk (variant index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum StoredTaskResult {
    Reached,
    NoAnswer,
    WrongNumber,
    Promise,
    Dispute,
    ClaimsPaid,
}

impl From<&Task> for StoredTask {
    fn from(t: &Task) -> Self {
        StoredTask {
            id: t.id.to_bytes(),
            kind: match t.kind {
                TaskKind::Call => StoredTaskKind::Call,
                TaskKind::Review => StoredTaskKind::Review,
            },
            invoice_id: t.invoice_id.as_ref().map(|i| i.as_str().to_owned()),
            client_id: t.client_id.as_str().to_owned(),
            segment: t.segment.clone(),
            reason: t.reason.clone(),
            state: match t.state {
                TaskState::Open => StoredTaskState::Open,
                TaskState::Claimed => StoredTaskState::Claimed,
                TaskState::Done => StoredTaskState::Done,
                TaskState::Cancelled => StoredTaskState::Cancelled,
            },
            priority: t.priority.into(),
            due_at: t.due_at.into(),
            attempt: t.attempt,
            agent: t.agent.clone(),
            claimed_at: t.claimed_at.map(StoredTime::from),
            result: t.result.map(|r| match r {
                TaskResult::Reached => StoredTaskResult::Reached,
                TaskResult::NoAnswer => StoredTaskResult::NoAnswer,
                TaskResult::WrongNumber => StoredTaskResult::WrongNumber,
                TaskResult::Promise => StoredTaskResult::Promise,
                TaskResult::Dispute => StoredTaskResult::Dispute,
                TaskResult::ClaimsPaid => StoredTaskResult::ClaimsPaid,
            }),
            note: t.note.clone(),
            created_at: t.created_at.into(),
            updated_at: t.updated_at.into(),
        }
    }
}

impl TryFrom<StoredTask> for Task {
    type Error = BadField;
    fn try_from(s: StoredTask) -> Result<Self, BadField> {
        Ok(Task {
            id: TaskId::from_bytes(s.id),
            kind: match s.kind {
                StoredTaskKind::Call => TaskKind::Call,
                StoredTaskKind::Review => TaskKind::Review,
            },
            invoice_id: s
                .invoice_id
                .map(|i| prim::invoice_id(i, "invoice_id"))
                .transpose()?,
            client_id: prim::client_id(s.client_id, "client_id")?,
            segment: s.segment,
            reason: s.reason,
            state: match s.state {
                StoredTaskState::Open => TaskState::Open,
                StoredTaskState::Claimed => TaskState::Claimed,
                StoredTaskState::Done => TaskState::Done,
                StoredTaskState::Cancelled => TaskState::Cancelled,
            },
            priority: s.priority.get("priority")?,
            due_at: s.due_at.get("due_at")?,
            attempt: s.attempt,
            agent: s.agent,
            claimed_at: s.claimed_at.map(|t| t.get("claimed_at")).transpose()?,
            result: s.result.map(|r| match r {
                StoredTaskResult::Reached => TaskResult::Reached,
                StoredTaskResult::NoAnswer => TaskResult::NoAnswer,
                StoredTaskResult::WrongNumber => TaskResult::WrongNumber,
                StoredTaskResult::Promise => TaskResult::Promise,
                StoredTaskResult::Dispute => TaskResult::Dispute,
                StoredTaskResult::ClaimsPaid => TaskResult::ClaimsPaid,
            }),
            note: s.note,
            created_at: s.created_at.get("created_at")?,
            updated_at: s.updated_at.get("updated_at")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    use super::super::{Record, RecordError};
    use crate::domain::{ClientId, InvoiceId, Task, TaskId, TaskKind, TaskResult, TaskState};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn full() -> Task {
        Task {
            id: TaskId::new(ts("2026-03-01T12:00:00.123456Z"), 7),
            kind: TaskKind::Call,
            invoice_id: Some(InvoiceId::new("FV-1001").unwrap()),
            client_id: ClientId::new("c-42").unwrap(),
            segment: "standard".into(),
            reason: "step call of cadence standard".into(),
            state: TaskState::Done,
            priority: Decimal::new(375_000_000, 2),
            due_at: ts("2026-03-02T13:00:00Z"),
            attempt: 2,
            agent: Some("ana".into()),
            claimed_at: Some(ts("2026-03-02T13:05:00Z")),
            result: Some(TaskResult::Promise),
            note: Some("pagará el viernes".into()),
            created_at: ts("2026-03-01T12:00:00.123456789Z"),
            updated_at: ts("2026-03-02T13:10:00Z"),
        }
    }

    fn bare() -> Task {
        Task {
            id: TaskId::new(ts("1969-07-20T20:17:40Z"), 0),
            kind: TaskKind::Review,
            invoice_id: None,
            client_id: ClientId::new("c-1").unwrap(),
            segment: String::new(),
            reason: "debtor says they paid".into(),
            state: TaskState::Open,
            priority: Decimal::ZERO,
            due_at: ts("1969-07-20T20:17:40Z"),
            attempt: 1,
            agent: None,
            claimed_at: None,
            result: None,
            note: None,
            created_at: ts("1969-07-20T20:17:40Z"),
            updated_at: ts("1969-07-20T20:17:40Z"),
        }
    }

    /// The layout of version 1, pinned: if this changes, records already on disk would no
    /// longer read back; bump the version instead (see the module docs).
    const GOLDEN_TASK: &str = "0180064bf535b0f240000000000000000700010746562d3130303104632d3432087374616e646172641d737465702063616c6c206f6620636164656e6365207374616e6461726402c097e8b201028080f1dd8eed839931020103616e610180e096f4c9fe839931010301127061676172c3a120656c20766965726e6573aab492b3b7f6da983180c0bc8a8590849931";

    #[test]
    fn tasks_round_trip_and_their_layout_is_pinned() {
        for t in [full(), bare()] {
            let bytes = t.encode().unwrap();
            assert_eq!(bytes[0], Task::VERSION);
            assert_eq!(Task::decode(&bytes).unwrap(), t);
        }
        assert_eq!(hex::encode(full().encode().unwrap()), GOLDEN_TASK);
    }

    #[test]
    fn damaged_task_records_are_refused_naming_the_kind() {
        let bytes = full().encode().unwrap();
        let mut newer = bytes.clone();
        newer[0] = 2;
        assert_eq!(
            Task::decode(&newer).unwrap_err(),
            RecordError::UnknownVersion {
                kind: "task",
                found: 2,
                expected: 1
            }
        );
        assert_eq!(
            Task::decode(&[]).unwrap_err(),
            RecordError::Empty { kind: "task" }
        );
        for len in 1..bytes.len() {
            assert!(matches!(
                Task::decode(&bytes[..len]),
                Err(RecordError::Malformed { kind: "task", .. })
            ));
        }
        let mut longer = bytes;
        longer.push(0);
        assert!(matches!(
            Task::decode(&longer),
            Err(RecordError::TrailingBytes { count: 1, .. })
        ));
    }

    proptest! {
        #[test]
        fn generated_tasks_round_trip(
            micros in -2_000_000_000_000_000i64..4_000_000_000_000_000,
            seq in any::<u64>(),
            kind in 0u8..2,
            state in 0u8..4,
            result in proptest::option::of(0usize..6),
            invoice in proptest::option::of("[A-Za-z0-9._:-]{1,40}"),
            reason in "\\PC{0,100}",
            agent in proptest::option::of("\\PC{1,40}"),
            cents in any::<i64>(),
            attempt in any::<u32>(),
        ) {
            let at = Timestamp::from_microsecond(micros).unwrap();
            let t = Task {
                id: TaskId::new(at, seq),
                kind: [TaskKind::Call, TaskKind::Review][usize::from(kind)],
                invoice_id: invoice.map(|i| InvoiceId::new(i).unwrap()),
                client_id: ClientId::new("c-1").unwrap(),
                segment: "s".into(),
                reason,
                state: TaskState::ALL[usize::from(state)],
                priority: Decimal::new(cents, 2),
                due_at: at,
                attempt,
                agent,
                claimed_at: Some(at),
                result: result.map(|r| TaskResult::ALL[r]),
                note: None,
                created_at: at,
                updated_at: at,
            };
            prop_assert_eq!(Task::decode(&t.encode().unwrap()).unwrap(), t);
        }

        #[test]
        fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Task::decode(&raw);
        }
    }
}
