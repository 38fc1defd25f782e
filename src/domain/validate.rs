//! Checks for text that ends up in mail headers, provider requests and logs: no control
//! characters, and a bounded size. Used by the API before anything is stored; the channels
//! still sanitise what they send, because records written by older versions may hold anything.

/// Longest client name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest email address, in characters (RFC 5321 path limit).
pub const MAX_EMAIL_CHARS: usize = 254;
/// Longest phone or WhatsApp number as written by the caller, in characters.
pub const MAX_PHONE_CHARS: usize = 32;
/// Longest time-zone, segment or other identifier-like string, in characters.
pub const MAX_IDENT_CHARS: usize = 64;
/// Most tags on a client.
pub const MAX_TAGS: usize = 32;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 64;
/// Most entries in `preferred_channels`.
pub const MAX_PREFERRED_CHANNELS: usize = 8;

/// Why a piece of text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Empty (or only whitespace) where a value is required.
    #[error("must not be empty")]
    Empty,
    /// Longer than allowed.
    #[error("is {len} characters long; the limit is {max}")]
    TooLong {
        /// Its length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Holds a control character (CR, LF, NUL, TAB, DEL, C1 controls) or a Unicode line or
    /// paragraph separator.
    #[error(
        "contains the control character U+{code:04X} at character {at}; line breaks, NUL and other control characters are not allowed"
    )]
    Control {
        /// The character's code point.
        code: u32,
        /// Its position (0-based, in characters).
        at: usize,
    },
}

/// Whether `c` must never appear in header-bound text: Unicode control characters (which
/// include CR, LF, NUL, TAB and DEL) and the line and paragraph separators U+2028/U+2029.
pub fn is_forbidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Checks that `value` has no forbidden character (see [`is_forbidden`]) and at most `max`
/// characters. Empty text passes; use [`required_text`] where a value is required.
pub fn check_text(value: &str, max: usize) -> Result<(), TextError> {
    let mut len = 0usize;
    for (at, c) in value.chars().enumerate() {
        if is_forbidden(c) {
            return Err(TextError::Control {
                code: u32::from(c),
                at,
            });
        }
        len = at + 1;
    }
    if len > max {
        return Err(TextError::TooLong { len, max });
    }
    Ok(())
}

/// Trims `value` and checks it is non-empty and passes [`check_text`].
pub fn required_text(value: &str, max: usize) -> Result<String, TextError> {
    let t = value.trim();
    if t.is_empty() {
        return Err(TextError::Empty);
    }
    check_text(t, max)?;
    Ok(t.to_owned())
}

/// `value` made safe for a single header line or display name: every forbidden character
/// (see [`is_forbidden`]) becomes a space, runs of whitespace collapse to one space, the ends
/// are trimmed, and the result is cut to `max` characters. Never fails.
pub fn sanitize_line(value: &str, max: usize) -> String {
    let mut out = String::with_capacity(value.len().min(max.saturating_mul(4)));
    let mut count = 0usize;
    let mut pending_space = false;
    for c in value.chars() {
        let c = if is_forbidden(c) { ' ' } else { c };
        if c.is_whitespace() {
            pending_space = count > 0;
            continue;
        }
        if pending_space {
            if count + 1 >= max {
                break;
            }
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        if count >= max {
            break;
        }
        out.push(c);
        count += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_with_their_position() {
        for bad in [
            "Ana\nB",
            "Ana\rB",
            "Ana\0B",
            "Ana\u{7f}B",
            "Ana\u{85}B",
            "Ana\u{2028}B",
        ] {
            let e = check_text(bad, 200).unwrap_err();
            assert!(
                matches!(e, TextError::Control { at: 3, .. }),
                "{bad:?}: {e}"
            );
            assert!(e.to_string().contains("control character"), "{e}");
        }
        // Right-to-left marks and other format characters are text, not controls.
        check_text("\u{200f}مريم\u{200e}", 200).unwrap();
        check_text("María Pérez", 200).unwrap();
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        check_text(&"é".repeat(200), 200).unwrap();
        assert_eq!(
            check_text(&"é".repeat(201), 200),
            Err(TextError::TooLong { len: 201, max: 200 })
        );
        assert_eq!(required_text("   ", 10), Err(TextError::Empty));
        assert_eq!(required_text("  Ana ", 10).unwrap(), "Ana");
    }

    #[test]
    fn sanitize_line_removes_breaks_and_bounds_length() {
        assert_eq!(sanitize_line("Ana\r\nBcc: x@y\0", 200), "Ana Bcc: x@y");
        assert_eq!(sanitize_line("  \n ", 200), "");
        assert_eq!(sanitize_line("abcdef", 3), "abc");
        assert_eq!(sanitize_line("ab \n cd", 4), "ab c");
        assert_eq!(sanitize_line(&"x".repeat(10_000), 200).chars().count(), 200);
        assert!(!sanitize_line("a\u{2029}b\u{85}c", 200).contains(['\u{2029}', '\u{85}']));
    }
}
