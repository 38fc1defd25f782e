//! Where a setting is written in the config text, so that every error can name
//! `file:line:column` even when it is found after deserialisation (a route to an undefined
//! channel, a cron expression that does not parse, a missing policy file).

use toml::de::{DeTable, DeValue};

/// 1-based line and column (in characters) of byte offset `byte` in `text`. Never panics: an
/// offset past the end or inside a character is moved back to the nearest character boundary.
pub fn line_col(text: &str, byte: usize) -> (usize, usize) {
    let mut byte = byte.min(text.len());
    while !text.is_char_boundary(byte) {
        byte = byte.saturating_sub(1);
    }
    let before = text.get(..byte).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).unwrap_or_default().chars().count() + 1;
    (line, column)
}

/// The 1-based (line, column) of the setting at the dotted `path` (`["dispatch",
/// "concurrency"]`) in the TOML `text`: its value when it is written, else the deepest table
/// of the path that is (where the key would go), else the start of the file.
pub fn locate(text: &str, path: &[&str]) -> (usize, usize) {
    let Ok(doc) = DeTable::parse(text) else {
        return (1, 1);
    };
    let mut table: &DeTable<'_> = doc.get_ref();
    let mut best: Option<usize> = None;
    for key in path {
        let Some((k, v)) = table.iter().find(|(k, _)| k.get_ref().as_ref() == *key) else {
            break;
        };
        best = Some(match v.get_ref() {
            // A table's own span may be its header or its whole body; the key is clearer.
            DeValue::Table(_) => k.span().start,
            _ => v.span().start,
        });
        match v.get_ref() {
            DeValue::Table(t) => table = t,
            _ => break,
        }
    }
    best.map_or((1, 1), |b| line_col(text, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_in_characters() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab\ncd", 99), (2, 3));
        // Inside the two bytes of "ñ": moved back, no panic.
        assert_eq!(line_col("ñx", 1), (1, 1));
        assert_eq!(line_col("ñx", 2), (1, 2));
    }

    #[test]
    fn finds_values_tables_and_falls_back() {
        let text = "listen = \"x\"\n\n[dispatch]\nbatch = 3\nconcurrency = 0\n[channels.out]\ntype = \"outbox\"\ndir = \"/tmp\"\n";
        assert_eq!(locate(text, &["dispatch", "concurrency"]), (5, 15));
        assert_eq!(locate(text, &["listen"]), (1, 10));
        // Missing key: the table it belongs in.
        assert_eq!(locate(text, &["dispatch", "max_attempts"]), (3, 2));
        assert_eq!(locate(text, &["channels", "out", "dir"]), (8, 7));
        assert_eq!(locate(text, &["log", "level"]), (1, 1));
        assert_eq!(locate("not toml [", &["a"]), (1, 1));
    }
}
