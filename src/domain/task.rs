//! Tasks for people: phone calls to make (`call`) and replies to check (`review`), worked from
//! a queue (`GET /v1/tasks`), claimed by one agent at a time and closed with an outcome.

use std::fmt;

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{ClientId, InvoiceId};

/// Why a task id was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a task id (tsk_ followed by 32 lower-case hex digits)")]
pub struct TaskIdError(pub String);

const SIGN_BIT: u64 = 1 << 63;

/// The id of a task: `tsk_` then 32 hex digits, the creation instant (microseconds, ordered
/// even before 1970) and a store-wide sequence number, so ids never repeat in a store and sort
/// in the order tasks were created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TaskId([u8; 16]);

impl TaskId {
    /// The id of a task created at `at`, numbered `seq` (a store-wide sequence).
    pub fn new(at: Timestamp, seq: u64) -> Self {
        let micros = i64::try_from(at.as_nanosecond().div_euclid(1000)).unwrap_or(i64::MAX);
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&((micros as u64) ^ SIGN_BIT).to_be_bytes());
        b[8..].copy_from_slice(&seq.to_be_bytes());
        TaskId(b)
    }

    /// Parses `tsk_<32 lower-case hex digits>`.
    pub fn parse(s: &str) -> Result<Self, TaskIdError> {
        let bad = || TaskIdError(s.chars().take(64).collect());
        let hex_part = s.strip_prefix("tsk_").ok_or_else(bad)?;
        if hex_part.len() != 32 || hex_part.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad());
        }
        let raw = hex::decode(hex_part).map_err(|_| bad())?;
        let bytes: [u8; 16] = raw.try_into().map_err(|_| bad())?;
        Ok(TaskId(bytes))
    }

    /// The 16 bytes (creation instant, then sequence; both big-endian).
    pub fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// Rebuilds an id from [`TaskId::to_bytes`].
    pub fn from_bytes(b: [u8; 16]) -> Self {
        TaskId(b)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tsk_{}", hex::encode(self.0))
    }
}

impl From<TaskId> for String {
    fn from(id: TaskId) -> String {
        id.to_string()
    }
}

impl TryFrom<String> for TaskId {
    type Error = TaskIdError;
    fn try_from(s: String) -> Result<Self, TaskIdError> {
        TaskId::parse(&s)
    }
}

/// What a task asks a person to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Phone the debtor about an invoice (a `task` step, a `call` channel, `on_exhausted =
    /// "task"`, or the next attempt after no answer).
    Call,
    /// Check what the debtor wrote (says they paid, or another reply the policy routes to a
    /// person) and resume or close the chase.
    Review,
}

impl TaskKind {
    /// The kind's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Call => "call",
            TaskKind::Review => "review",
        }
    }
}

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// In the queue.
    Open,
    /// An agent took it (`agent`, `claimed_at`); back in the queue when the claim is older
    /// than the policy's `claim_timeout`.
    Claimed,
    /// Closed with an outcome.
    Done,
    /// Closed without one: the invoice was paid, voided, handed off or written off.
    Cancelled,
}

impl TaskState {
    /// Every state, in the order the API lists them.
    pub const ALL: [TaskState; 4] = [
        TaskState::Open,
        TaskState::Claimed,
        TaskState::Done,
        TaskState::Cancelled,
    ];

    /// The state's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Open => "open",
            TaskState::Claimed => "claimed",
            TaskState::Done => "done",
            TaskState::Cancelled => "cancelled",
        }
    }

    /// Whether the task still waits for someone (open or claimed).
    pub fn is_live(self) -> bool {
        matches!(self, TaskState::Open | TaskState::Claimed)
    }
}

/// How a task ended (`POST /v1/tasks/{id}/outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskResult {
    /// Spoke with the debtor; nothing else to record.
    Reached,
    /// Nobody answered: the next attempt is planned (up to the policy's attempts).
    NoAnswer,
    /// The number is not the debtor's: the phone is marked unreachable.
    WrongNumber,
    /// The debtor promised to pay: the promise is recorded.
    Promise,
    /// The debtor disputes the invoice: the chase pauses.
    Dispute,
    /// The debtor says they already paid: the chase pauses until someone checks.
    ClaimsPaid,
}

impl TaskResult {
    /// Whether the call reached the debtor (an effective contact, for contact caps).
    pub fn reached_debtor(self) -> bool {
        matches!(
            self,
            TaskResult::Reached
                | TaskResult::Promise
                | TaskResult::Dispute
                | TaskResult::ClaimsPaid
        )
    }

    /// Every result, in the order error messages list them.
    pub const ALL: [TaskResult; 6] = [
        TaskResult::Reached,
        TaskResult::NoAnswer,
        TaskResult::WrongNumber,
        TaskResult::Promise,
        TaskResult::Dispute,
        TaskResult::ClaimsPaid,
    ];

    /// The result's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskResult::Reached => "reached",
            TaskResult::NoAnswer => "no_answer",
            TaskResult::WrongNumber => "wrong_number",
            TaskResult::Promise => "promise",
            TaskResult::Dispute => "dispute",
            TaskResult::ClaimsPaid => "claims_paid",
        }
    }

    /// The result named `s`, if any.
    pub fn parse(s: &str) -> Option<TaskResult> {
        TaskResult::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// One task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Its id.
    pub id: TaskId,
    /// Call or review.
    pub kind: TaskKind,
    /// The invoice it is about; review tasks from an inbound reply are about the client.
    pub invoice_id: Option<InvoiceId>,
    /// The debtor.
    pub client_id: ClientId,
    /// The segment the invoice (or client) followed when the task was created.
    pub segment: String,
    /// Why it exists (`step second_call of cadence standard`, `debtor says they paid: ...`).
    pub reason: String,
    /// Where it is.
    pub state: TaskState,
    /// Queue order, higher first: the policy's `[tasks] priority` at creation.
    #[serde(with = "rust_decimal::serde::str")]
    pub priority: Decimal,
    /// When it should be worked: inside the client's contact window.
    pub due_at: Timestamp,
    /// 1 for the first call; the next attempt after no answer is 2, and so on.
    pub attempt: u32,
    /// Who claimed it.
    pub agent: Option<String>,
    /// When it was claimed.
    pub claimed_at: Option<Timestamp>,
    /// How it ended.
    pub result: Option<TaskResult>,
    /// The agent's note, or why it was cancelled.
    pub note: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}
