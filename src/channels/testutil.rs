//! Helpers shared by the channel tests.

use std::path::Path;
use std::sync::Arc;

use super::Outbound;
use super::build::BuildContext;
use crate::domain::{ClientId, InvoiceId, ReminderId};

/// An email reminder with text, HTML, a UTF-8 subject and an unsubscribe URL.
pub(crate) fn email(to: &str, step: u32) -> Outbound {
    let invoice_id = InvoiceId::new("INV-2024-001").unwrap();
    Outbound {
        reminder_id: ReminderId::derive(&invoice_id, 0, step),
        invoice_id,
        client_id: ClientId::new("c-42").unwrap(),
        kind: "email".to_owned(),
        to: to.to_owned(),
        to_name: "Ana Muñoz".to_owned(),
        subject: Some("Recordatorio: factura vencida — ¿ya pagó?".to_owned()),
        text: "Hola Ana, la factura INV-2024-001 vence hoy.".to_owned(),
        html: Some("<p>Hola Ana, la factura <b>INV-2024-001</b> vence hoy.</p>".to_owned()),
        step: "due".to_owned(),
        tone: "friendly".to_owned(),
        locale: "es-CO".to_owned(),
        unsubscribe_url: Some("https://pay.example.co/u/tok_Zx81".to_owned()),
        whatsapp: None,
    }
}

/// A build context over `dir` with the given environment variables.
pub(crate) fn ctx(dir: &Path, vars: &[(&str, &str)]) -> BuildContext {
    let vars: std::collections::HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    BuildContext {
        data_dir: dir.to_owned(),
        env: Arc::new(move |k| vars.get(k).cloned()),
        public_url: None,
        limiters: Default::default(),
        clock: Arc::new(crate::clock::SystemClock),
    }
}

/// Unfolds a header block and returns the value of header `name` (case-insensitive).
pub(crate) fn header(raw: &str, name: &str) -> Option<String> {
    let head = raw.split("\r\n\r\n").next()?;
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded.split("\r\n").find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

/// Decodes RFC 2047 `=?utf-8?b?...?=` words (as lettre writes them); other text is kept.
pub(crate) fn decode_2047(v: &str) -> String {
    use base64::Engine as _;
    // Runs of adjacent encoded words are decoded together (a character may span two words);
    // whitespace between encoded words is dropped, elsewhere it is one space.
    let mut parts: Vec<(bool, Vec<u8>)> = Vec::new();
    for word in v.split_whitespace() {
        let lower = word.to_ascii_lowercase();
        if lower.starts_with("=?utf-8?b?") && word.ends_with("?=") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(&word[10..word.len() - 2])
                .unwrap();
            match parts.last_mut() {
                Some((true, b)) => b.extend(raw),
                _ => parts.push((true, raw)),
            }
        } else {
            parts.push((false, word.as_bytes().to_vec()));
        }
    }
    parts
        .into_iter()
        .map(|(_, b)| String::from_utf8(b).unwrap())
        .collect::<Vec<_>>()
        .join(" ")
}
