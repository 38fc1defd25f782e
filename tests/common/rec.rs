//! A scriptable channel that records what it is asked to send.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use plazo::channels::ratelimit::SharedLimiter;
use plazo::channels::{Channel, ChannelError, FailureScope, Outbound, Receipt};

/// What the channel answers to one call.
#[derive(Clone)]
pub enum Answer {
    Ok,
    Transient(Option<Duration>),
    Permanent,
    /// A permanent error reaching as far as the scope.
    Scoped(FailureScope),
    /// Accepted, then `hook` runs (e.g. to break the store right after a send).
    OkThen(Arc<dyn Fn() + Send + Sync>),
}

#[derive(Default)]
pub struct RecState {
    script: VecDeque<Answer>,
    /// Every call, including failed ones.
    calls: Vec<Outbound>,
    /// Messages accepted.
    sent: Vec<Outbound>,
}

#[derive(Clone)]
pub struct RecChannel {
    name: String,
    adapter: &'static str,
    reports: bool,
    limiter: Option<SharedLimiter>,
    state: Arc<Mutex<RecState>>,
}

impl RecChannel {
    pub fn new(name: &str) -> Self {
        RecChannel {
            name: name.to_owned(),
            adapter: "test",
            reports: false,
            limiter: None,
            state: Arc::default(),
        }
    }
    /// A channel whose provider reports delivery (receipts), under adapter name `adapter`.
    pub fn reporting(name: &str, adapter: &'static str) -> Self {
        RecChannel {
            adapter,
            reports: true,
            ..RecChannel::new(name)
        }
    }
    /// The same channel drawing from `limiter`.
    pub fn limited(mut self, limiter: SharedLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }
    /// Queues answers for the next calls; once the script runs out every call succeeds.
    pub fn script(&self, answers: &[Answer]) {
        self.state
            .lock()
            .unwrap()
            .script
            .extend(answers.iter().cloned());
    }
    pub fn sent(&self) -> Vec<Outbound> {
        self.state.lock().unwrap().sent.clone()
    }
    pub fn calls(&self) -> usize {
        self.state.lock().unwrap().calls.len()
    }
}

impl Channel for RecChannel {
    fn name(&self) -> &str {
        &self.name
    }
    fn adapter(&self) -> &'static str {
        self.adapter
    }
    fn reports_delivery(&self) -> bool {
        self.reports
    }
    fn rate_limiter(&self) -> Option<&SharedLimiter> {
        self.limiter.as_ref()
    }
    fn send<'a>(&'a self, msg: &'a Outbound) -> BoxFuture<'a, Result<Receipt, ChannelError>> {
        Box::pin(async move {
            let mut st = self.state.lock().unwrap();
            st.calls.push(msg.clone());
            match st.script.pop_front().unwrap_or(Answer::Ok) {
                Answer::OkThen(hook) => {
                    st.sent.push(msg.clone());
                    hook();
                    Ok(Receipt {
                        provider_message_id: Some(format!("{}-{}", self.name, st.sent.len())),
                        note: None,
                    })
                }
                Answer::Ok => {
                    st.sent.push(msg.clone());
                    Ok(Receipt {
                        provider_message_id: Some(format!("{}-{}", self.name, st.sent.len())),
                        note: None,
                    })
                }
                Answer::Transient(retry_after) => Err(ChannelError::Transient {
                    message: "try later".into(),
                    retry_after,
                }),
                Answer::Permanent => Err(ChannelError::permanent("rejected")),
                Answer::Scoped(scope) => Err(ChannelError::permanent_scoped(scope, "rejected")),
            }
        })
    }
}
