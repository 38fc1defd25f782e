//! How many SMS segments a text takes, and in which encoding (GSM 03.38 / 3GPP TS 23.038).
//!
//! A text made only of characters of the GSM 7-bit default alphabet (plus its extension table,
//! whose characters take an escape septet and so count twice) is sent as GSM-7: 160 septets fit
//! one SMS, and a longer text is split into parts of 153 septets (7 octets go to the
//! concatenation header). Any other character switches the whole text to UCS-2: 70 UTF-16 code
//! units in one SMS, 67 per part when split; characters outside the Basic Multilingual Plane
//! (most emoji) take two code units. An escape sequence or a surrogate pair is never split
//! across two parts, so a part may hold one unit less than its maximum.
//!
//! Twilio bills per segment. This is the count without Twilio's optional "Smart Encoding"
//! (which replaces e.g. curly quotes with straight ones before counting).

/// Septets in a single GSM-7 SMS.
const GSM7_SINGLE: usize = 160;
/// Septets in one part of a concatenated GSM-7 SMS.
const GSM7_PART: usize = 153;
/// UTF-16 code units in a single UCS-2 SMS.
const UCS2_SINGLE: usize = 70;
/// UTF-16 code units in one part of a concatenated UCS-2 SMS.
const UCS2_PART: usize = 67;

/// The GSM 7-bit default alphabet (3GPP TS 23.038 §6.2.1), in code order, without the escape
/// code 0x1B. Note the letters it has (`ñ Ñ é É è ù ì ò à ä ö ü Ä Ö Ü Ç å Å`) and the ones it
/// lacks (`á í ó ú ç ê â`...): one `á` makes a Spanish text UCS-2.
pub(crate) const GSM7_BASIC: &str = concat!(
    "@£$¥èéùìòÇ\nØø\rÅå",
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ",
    " !\"#¤%&'()*+,-./0123456789:;<=>?",
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§",
    "¿abcdefghijklmnopqrstuvwxyzäöñüà",
);

/// The GSM 7-bit default alphabet extension table (3GPP TS 23.038 §6.2.1.1): each character is
/// sent as the escape septet 0x1B followed by one septet, so it counts as two. The first is
/// form feed.
pub(crate) const GSM7_EXTENSION: &str = "\u{0C}^{}\\[~]|€";

/// The encoding an SMS is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsEncoding {
    /// The GSM 7-bit default alphabet: 160 characters in one SMS, 153 per part.
    Gsm7,
    /// UCS-2 (UTF-16): 70 code units in one SMS, 67 per part.
    Ucs2,
}

impl SmsEncoding {
    /// `GSM-7` or `UCS-2`.
    pub fn as_str(self) -> &'static str {
        match self {
            SmsEncoding::Gsm7 => "GSM-7",
            SmsEncoding::Ucs2 => "UCS-2",
        }
    }
}

/// How a text is sent as SMS: see [`sms_segments`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsSegments {
    /// GSM-7 when every character is in the GSM alphabet (or its extension), else UCS-2.
    pub encoding: SmsEncoding,
    /// Length in the encoding's units: septets for GSM-7 (extension characters count 2),
    /// UTF-16 code units for UCS-2 (characters outside the BMP count 2).
    pub units: usize,
    /// SMS parts needed (0 for an empty text, which Twilio refuses anyway).
    pub segments: usize,
}

/// Septets the character takes in GSM-7, or `None` if it is not in the GSM alphabet.
fn gsm7_septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Counts parts when `costs` (in units) are packed greedily into parts of `part` units without
/// splitting any one character; `single` units fit an unsplit message.
fn count_parts(
    costs: impl Iterator<Item = usize>,
    total: usize,
    single: usize,
    part: usize,
) -> usize {
    if total == 0 {
        return 0;
    }
    if total <= single {
        return 1;
    }
    let mut parts = 1;
    let mut used = 0;
    for cost in costs {
        if used + cost > part {
            parts += 1;
            used = 0;
        }
        used += cost;
    }
    parts
}

/// The encoding, length and number of SMS segments of `text`.
///
/// ```
/// use plazo::channels::twilio::{SmsEncoding, sms_segments};
/// let s = sms_segments("Señor Muñoz: su factura vence mañana.");
/// assert_eq!((s.encoding, s.segments), (SmsEncoding::Gsm7, 1));
/// let s = sms_segments("Su factura está vencida.");
/// assert_eq!(s.encoding, SmsEncoding::Ucs2);
/// ```
pub fn sms_segments(text: &str) -> SmsSegments {
    let gsm: Option<Vec<usize>> = text.chars().map(gsm7_septets).collect();
    match gsm {
        Some(costs) => {
            let units = costs.iter().sum();
            SmsSegments {
                encoding: SmsEncoding::Gsm7,
                units,
                segments: count_parts(costs.into_iter(), units, GSM7_SINGLE, GSM7_PART),
            }
        }
        None => {
            let units = text.encode_utf16().count();
            SmsSegments {
                encoding: SmsEncoding::Ucs2,
                units,
                segments: count_parts(
                    text.chars().map(char::len_utf16),
                    units,
                    UCS2_SINGLE,
                    UCS2_PART,
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(text: &str) -> (SmsEncoding, usize, usize) {
        let s = sms_segments(text);
        (s.encoding, s.units, s.segments)
    }

    #[test]
    fn gsm_tables_have_the_standard_sizes() {
        // 128 codes minus the escape code; 10 extension characters.
        assert_eq!(GSM7_BASIC.chars().count(), 127);
        assert_eq!(GSM7_EXTENSION.chars().count(), 10);
        let mut all: Vec<char> = GSM7_BASIC.chars().chain(GSM7_EXTENSION.chars()).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 137, "no character is listed twice");
        // Greek capitals are the Greek code points, not the math symbols.
        assert!(GSM7_BASIC.contains('\u{0394}') && !GSM7_BASIC.contains('\u{2206}'));
        assert!(GSM7_BASIC.contains('\u{03A9}') && !GSM7_BASIC.contains('\u{2126}'));
        // `$` is at 0x02 and `¤` at 0x24: both present; the grave accent is not.
        assert!(GSM7_BASIC.contains('¤') && !GSM7_BASIC.contains('`'));
    }

    #[test]
    fn gsm7_single_and_concatenated_limits() {
        assert_eq!(seg(""), (SmsEncoding::Gsm7, 0, 0));
        assert_eq!(seg("a"), (SmsEncoding::Gsm7, 1, 1));
        assert_eq!(seg(&"a".repeat(160)), (SmsEncoding::Gsm7, 160, 1));
        assert_eq!(seg(&"a".repeat(161)), (SmsEncoding::Gsm7, 161, 2));
        assert_eq!(seg(&"a".repeat(306)), (SmsEncoding::Gsm7, 306, 2));
        assert_eq!(seg(&"a".repeat(307)), (SmsEncoding::Gsm7, 307, 3));
        assert_eq!(seg(&"a".repeat(459)), (SmsEncoding::Gsm7, 459, 3));
        assert_eq!(seg(&"a".repeat(460)), (SmsEncoding::Gsm7, 460, 4));
    }

    #[test]
    fn gsm7_extension_characters_count_twice_and_are_not_split() {
        for c in "^{}\\[~]|€\u{0C}".chars() {
            assert_eq!(seg(&c.to_string()), (SmsEncoding::Gsm7, 2, 1), "{c:?}");
        }
        assert_eq!(
            seg(&format!("{}€", "a".repeat(158))),
            (SmsEncoding::Gsm7, 160, 1)
        );
        assert_eq!(
            seg(&format!("{}€", "a".repeat(159))),
            (SmsEncoding::Gsm7, 161, 2)
        );
        // 306 septets would fit two parts, but the escape sequence of `€` cannot straddle the
        // boundary after 152 septets: it moves to part 2, which overflows into part 3.
        let t = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(seg(&t), (SmsEncoding::Gsm7, 306, 3));
    }

    #[test]
    fn spanish_letters_in_and_out_of_the_gsm_alphabet() {
        // ñ Ñ é É ü Ü ¡ ¿ à è ì ò ù Ç are GSM-7.
        let t = "¡Hola, Señor Muñoz! ¿Pagó? No: Ñandú, café, pingüino, à è ì ò ù É Ü Ç";
        assert_eq!(seg(t).0, SmsEncoding::Ucs2, "ó is not GSM-7");
        let t = "¡Hola, Señor Muñoz! ¿Ya pagaste? Ñandú... no: café, pingüino, à è ì ò ù É Ü Ç";
        assert_eq!(seg(t).0, SmsEncoding::Ucs2, "ú is not GSM-7");
        let t = "¡Hola, Señor Muñoz! ¿Ya pagaste? Café, pingüino, à è ì ò ù É Ü Ç, 50 €";
        let n = t.chars().count();
        assert_eq!(seg(t), (SmsEncoding::Gsm7, n + 1, 1));
        // Each of these alone forces UCS-2.
        for c in [
            'á', 'í', 'ó', 'ú', 'ç', 'Á', 'Í', 'Ó', 'Ú', 'ê', 'â', 'õ', 'º', '`', '’',
        ] {
            let t = format!("Factura vencida {c}");
            assert_eq!(seg(&t), (SmsEncoding::Ucs2, 17, 1), "{c:?}");
        }
        let t = "Hola Ana, su factura INV-2024-001 por $1.250.000 venció el 3 de marzo. Pague en \
                 https://pay.example.co/i/abc. Si ya pagó, ignore este mensaje.";
        let n = t.chars().count();
        assert_eq!(n, 142);
        assert_eq!(seg(t), (SmsEncoding::Ucs2, 142, 3));
        assert_eq!(seg(&t.replace('ó', "o")), (SmsEncoding::Gsm7, 142, 1));
    }

    #[test]
    fn ucs2_limits_and_surrogate_pairs() {
        assert_eq!(seg(&"á".repeat(70)), (SmsEncoding::Ucs2, 70, 1));
        assert_eq!(seg(&"á".repeat(71)), (SmsEncoding::Ucs2, 71, 2));
        assert_eq!(seg(&"á".repeat(134)), (SmsEncoding::Ucs2, 134, 2));
        assert_eq!(seg(&"á".repeat(135)), (SmsEncoding::Ucs2, 135, 3));
        assert_eq!(seg("Hello! 👍"), (SmsEncoding::Ucs2, 9, 1));
        assert_eq!(seg(&"👍".repeat(35)), (SmsEncoding::Ucs2, 70, 1));
        assert_eq!(seg(&"👍".repeat(36)), (SmsEncoding::Ucs2, 72, 2));
        // 134 code units, but the pair cannot straddle the boundary after 66 units.
        let t = format!("{}👍{}", "á".repeat(66), "á".repeat(66));
        assert_eq!(seg(&t), (SmsEncoding::Ucs2, 134, 3));
    }
}
