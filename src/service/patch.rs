//! `PATCH /v1/clients/{id}` and `PATCH /v1/invoices/{id}`: JSON Merge Patch (RFC 7396).
//!
//! The stored record is turned back into the body its `PUT` takes, the patch is merged into
//! it (a member set to `null` is removed, an object merges member by member, anything else
//! replaces), and the result goes through exactly the `PUT` path: the same validation, the
//! same re-planning. The record is read, merged, validated and written in one command, so two
//! concurrent patches never lose one another's change.

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::clients::upsert_client_with;
use super::invoices::upsert_invoice_with;
use super::{ClientInput, ServiceError, Upserted};
use crate::domain::{Client, ClientId, Invoice, InvoiceId};
use crate::policy::{LoadedPolicy, Policy};
use crate::store::Store;

/// Applies `patch` to `target` as RFC 7396 says.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// The body of `PUT /v1/clients/{id}` that would store `c` as it is.
pub fn client_body(c: &Client) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(c.name));
    let mut opt = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    };
    opt("email", &c.email);
    opt("phone", &c.phone);
    opt("whatsapp", &c.whatsapp);
    opt("locale", &c.locale);
    opt("timezone", &c.timezone);
    opt("country", &c.country);
    opt("subdivision", &c.subdivision);
    opt("segment", &c.segment);
    if !c.blocked_times.is_empty() {
        m.insert("blocked_times".into(), json!(c.blocked_times));
    }
    if !c.preferred_channels.is_empty() {
        m.insert("preferred_channels".into(), json!(c.preferred_channels));
    }
    if !c.tags.is_empty() {
        m.insert("tags".into(), json!(c.tags));
    }
    Value::Object(m)
}

/// The body of `PUT /v1/invoices/{id}` that would store `i` as it is.
pub fn invoice_body(i: &Invoice) -> Value {
    let mut m = Map::new();
    m.insert("client_id".into(), json!(i.client_id.as_str()));
    m.insert("number".into(), json!(i.number));
    m.insert("currency".into(), json!(i.currency.code()));
    m.insert("amount".into(), json!(i.amount.to_string()));
    m.insert("due_at".into(), json!(i.due_at.to_string()));
    if let Some(d) = i.issued_at {
        m.insert("issued_at".into(), json!(d.to_string()));
    }
    if let Some(u) = &i.payment_url {
        m.insert("payment_url".into(), json!(u));
    }
    if !i.metadata.is_empty() {
        m.insert("metadata".into(), json!(i.metadata));
    }
    Value::Object(m)
}

/// `patch` merged into `base`, read as a `PUT` body of type `T`.
fn merged<T: serde::de::DeserializeOwned>(
    base: &Value,
    patch: &Value,
    what: &str,
) -> Result<T, ServiceError> {
    if !patch.is_object() {
        return Err(ServiceError::invalid(
            "body",
            format!(
                "a merge patch of {what} is a JSON object of the fields to change (null removes one)"
            ),
        ));
    }
    let mut body = base.clone();
    merge_patch(&mut body, patch);
    serde_json::from_value(body).map_err(|e| ServiceError::invalid("body", e.to_string()))
}

/// Applies `patch` to client `id` (404 if it does not exist), read, merged, validated and
/// written in one command. Returns the stored client.
pub fn patch_client(
    store: &Store,
    policy: &Policy,
    id: &ClientId,
    patch: &Value,
    now: Timestamp,
) -> Result<Client, ServiceError> {
    let draft_of = |current: Option<&Client>| {
        let current = current.ok_or_else(|| not_found("client", id.as_str()))?;
        let input: ClientInput = merged(&client_body(current), patch, "a client")?;
        super::draft_client(id, input, policy, now)
    };
    upsert_client_with(store, policy, id, now, draft_of).map(|(c, _)| c)
}

/// Applies `patch` to invoice `id` (404 if it does not exist) as
/// [`upsert_invoice_async`](super::upsert_invoice_async) would the merged body, read, merged
/// and written in one command. Returns once the change is on disk.
pub async fn patch_invoice(
    store: &Store,
    policy: Arc<LoadedPolicy>,
    id: &InvoiceId,
    patch: &Value,
    now: Timestamp,
) -> Result<(Invoice, Upserted, Option<Timestamp>), ServiceError> {
    let (patch, shown) = (patch.clone(), id.to_string());
    upsert_invoice_with(store, policy, id.clone(), now, move |current| {
        let current = current.ok_or_else(|| not_found("invoice", &shown))?;
        merged(&invoice_body(current), &patch, "an invoice")
    })
    .await
}

fn not_found(what: &'static str, id: &str) -> ServiceError {
    ServiceError::NotFound {
        what,
        id: id.chars().take(64).collect(),
        hint: "; a PATCH changes a stored record: create it with PUT first",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples of RFC 7396, appendix A.
    #[test]
    fn rfc_7396_examples() {
        let cases = [
            (r#"{"a":"b"}"#, r#"{"a":"c"}"#, r#"{"a":"c"}"#),
            (r#"{"a":"b"}"#, r#"{"b":"c"}"#, r#"{"a":"b","b":"c"}"#),
            (r#"{"a":"b"}"#, r#"{"a":null}"#, r#"{}"#),
            (r#"{"a":"b","b":"c"}"#, r#"{"a":null}"#, r#"{"b":"c"}"#),
            (r#"{"a":["b"]}"#, r#"{"a":"c"}"#, r#"{"a":"c"}"#),
            (r#"{"a":"c"}"#, r#"{"a":["b"]}"#, r#"{"a":["b"]}"#),
            (
                r#"{"a":{"b":"c"}}"#,
                r#"{"a":{"b":"d","c":null}}"#,
                r#"{"a":{"b":"d"}}"#,
            ),
            (r#"{"a":[{"b":"c"}]}"#, r#"{"a":[1]}"#, r#"{"a":[1]}"#),
            (r#"["a","b"]"#, r#"["c","d"]"#, r#"["c","d"]"#),
            (r#"{"a":"b"}"#, r#"["c"]"#, r#"["c"]"#),
            (r#"{"a":"foo"}"#, r#"null"#, r#"null"#),
            (r#"{"a":"foo"}"#, r#""bar""#, r#""bar""#),
            (r#"{"e":null}"#, r#"{"a":1}"#, r#"{"e":null,"a":1}"#),
            (r#"[1,2]"#, r#"{"a":"b","c":null}"#, r#"{"a":"b"}"#),
            (
                r#"{}"#,
                r#"{"a":{"bb":{"ccc":null}}}"#,
                r#"{"a":{"bb":{}}}"#,
            ),
        ];
        for (target, patch, want) in cases {
            let mut t: Value = serde_json::from_str(target).unwrap();
            merge_patch(&mut t, &serde_json::from_str(patch).unwrap());
            assert_eq!(
                t,
                serde_json::from_str::<Value>(want).unwrap(),
                "{target} + {patch}"
            );
        }
    }
}
