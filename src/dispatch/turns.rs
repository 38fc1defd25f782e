//! One client at a time where caps apply: two reminders of the same client claimed together
//! would each count the contacts recorded so far and both go out, past a "one contact a day"
//! cap. A reminder checks caps and sends while holding its client's turn, so the next one
//! counts what the first recorded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::OwnedMutexGuard;

use crate::domain::ClientId;

/// How many entries the map holds before the ones nobody holds are dropped.
const PRUNE_AT: usize = 1024;

/// The turns, by client; an entry lives while someone holds or waits for it.
#[derive(Debug, Default)]
pub struct ClientTurns {
    turns: Mutex<HashMap<ClientId, Weak<tokio::sync::Mutex<()>>>>,
}

impl ClientTurns {
    /// Waits for `client`'s turn; it is released when the guard drops.
    pub async fn take(&self, client: &ClientId) -> OwnedMutexGuard<()> {
        let turn = {
            let mut map = self.turns.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() >= PRUNE_AT {
                map.retain(|_, w| w.strong_count() > 0);
            }
            match map.get(client).and_then(Weak::upgrade) {
                Some(t) => t,
                None => {
                    let t = Arc::new(tokio::sync::Mutex::new(()));
                    map.insert(client.clone(), Arc::downgrade(&t));
                    t
                }
            }
        };
        turn.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_turn_per_client_at_a_time() {
        let turns = ClientTurns::default();
        let a = ClientId::new("a").unwrap();
        let b = ClientId::new("b").unwrap();
        let held = turns.take(&a).await;
        // Another client is not held up.
        let other =
            tokio::time::timeout(std::time::Duration::from_millis(50), turns.take(&b)).await;
        assert!(other.is_ok());
        // The same client waits until the first turn ends.
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(50), turns.take(&a)).await;
        assert!(
            waiting.is_err(),
            "a second turn for the same client while the first is held"
        );
        drop(held);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), turns.take(&a))
                .await
                .is_ok()
        );
    }
}
