//! Which channels a step tries, in which order, and at which address.

use std::collections::BTreeMap;

use crate::channels::SharedChannel;
use crate::domain::Client;

/// Channel instances by the kind they serve (`email` → the SMTP or outbox instance).
#[derive(Clone, Default)]
pub struct ChannelRoutes {
    by_kind: BTreeMap<String, SharedChannel>,
}

impl ChannelRoutes {
    /// Routes `kind` to `channel`.
    pub fn insert(&mut self, kind: impl Into<String>, channel: SharedChannel) {
        self.by_kind.insert(kind.into(), channel);
    }
    /// The channel serving `kind`, if any.
    pub fn get(&self, kind: &str) -> Option<&SharedChannel> {
        self.by_kind.get(kind)
    }
    /// Kinds that have a channel.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.by_kind.keys().map(String::as_str)
    }
}

/// The step's channel chain reordered by the client's preferences: preferred kinds that the
/// step lists come first, in the client's order; the rest keep the step's order.
pub fn channel_chain(step_channels: &[String], preferred: &[String]) -> Vec<String> {
    let mut chain: Vec<String> = Vec::with_capacity(step_channels.len());
    for p in preferred {
        if step_channels.contains(p) && !chain.contains(p) {
            chain.push(p.clone());
        }
    }
    for c in step_channels {
        if !chain.contains(c) {
            chain.push(c.clone());
        }
    }
    chain
}

/// The client's address for a channel kind, if it has one.
pub fn recipient(kind: &str, client: &Client) -> Option<String> {
    match kind {
        "email" => client.email.clone(),
        "sms" => client.phone.clone(),
        "whatsapp" => client.whatsapp.clone().or_else(|| client.phone.clone()),
        "webhook" => Some(client.id.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn preferences_reorder_but_never_add() {
        assert_eq!(
            channel_chain(&s(&["email", "sms"]), &[]),
            s(&["email", "sms"])
        );
        assert_eq!(
            channel_chain(&s(&["whatsapp", "sms", "email"]), &s(&["email", "sms"])),
            s(&["email", "sms", "whatsapp"])
        );
        assert_eq!(
            channel_chain(&s(&["email"]), &s(&["whatsapp"])),
            s(&["email"])
        );
        // A kind repeated (not adjacently) in the preferences is tried once.
        assert_eq!(
            channel_chain(&s(&["email", "sms"]), &s(&["sms", "email", "sms"])),
            s(&["sms", "email"])
        );
    }
}
