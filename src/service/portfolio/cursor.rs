//! Opaque page cursors: the last key a page read, hex-encoded with a kind tag, so a cursor of
//! one listing is refused by another.

use super::ServiceError;

/// Encodes the key `key` of listing `kind`.
pub(super) fn encode(kind: &str, key: &[u8]) -> String {
    let mut raw = Vec::with_capacity(kind.len() + 1 + key.len());
    raw.extend_from_slice(kind.as_bytes());
    raw.push(b':');
    raw.extend_from_slice(key);
    hex::encode(raw)
}

/// Decodes a cursor of listing `kind` back to its key.
pub(super) fn decode(kind: &str, cursor: &str) -> Result<Vec<u8>, ServiceError> {
    let bad = || {
        ServiceError::invalid(
            "cursor",
            format!(
                "is not a cursor of this listing ({kind}); pass next_cursor of the previous page as it is"
            ),
        )
    };
    let raw = hex::decode(cursor.trim()).map_err(|_| bad())?;
    let rest = raw
        .strip_prefix(kind.as_bytes())
        .and_then(|r| r.strip_prefix(b":"))
        .ok_or_else(bad)?;
    Ok(rest.to_vec())
}

/// Decodes a cursor whose key is an id, read back with `parse` (`ClientId::new`...).
pub(super) fn decode_id<T, E: std::fmt::Display>(
    kind: &str,
    cursor: &str,
    parse: impl FnOnce(String) -> Result<T, E>,
) -> Result<T, ServiceError> {
    let text = String::from_utf8(decode(kind, cursor)?).map_err(|_| {
        ServiceError::invalid(
            "cursor",
            "is not a cursor from this API; pass next_cursor of the previous page as it is",
        )
    })?;
    parse(text).map_err(|e| ServiceError::invalid("cursor", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_other_listings_cursors_are_refused() {
        let c = encode("invoices", b"FV-1");
        assert_eq!(decode("invoices", &c).unwrap(), b"FV-1");
        let id = decode_id("invoices", &c, crate::domain::InvoiceId::new).unwrap();
        assert_eq!(id.as_str(), "FV-1");
        assert!(decode("clients", &c).is_err());
        for bad in ["", "zz", "00", &hex::encode("invoices")] {
            assert!(decode("invoices", bad).is_err(), "{bad:?}");
        }
    }
}
