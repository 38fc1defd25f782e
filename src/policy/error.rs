//! Why a policy file was rejected: every message names the file, line and column, the field, and
//! what would be valid.

use std::fmt;
use std::path::PathBuf;

use crate::templates::TemplateError;

/// A position in the policy file (1-based line and column, columns counted in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The policy file, as given.
    pub file: PathBuf,
    /// Line, when the problem has a position.
    pub line: Option<usize>,
    /// Column, when the problem has a position.
    pub column: Option<usize>,
}

impl Location {
    /// A position at `byte` in `text` of `file`.
    pub(crate) fn at(file: PathBuf, text: &str, byte: usize) -> Location {
        let (line, column) = line_col(text, byte);
        Location {
            file,
            line: Some(line),
            column: Some(column),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of byte offset `byte` in `text`.
pub(crate) fn line_col(text: &str, byte: usize) -> (usize, usize) {
    crate::config::line_col(text, byte)
}

/// Why the policy could not be loaded. `Display` is the full, user-facing message.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy file could not be read.
    #[error("{}: cannot read the policy file: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or does not have the expected shape (unknown field, wrong
    /// type, missing field).
    #[error("{location}: {}{message}", field.as_deref().map(|f| format!("{f}: ")).unwrap_or_default())]
    Syntax {
        /// Where.
        location: Location,
        /// The field's dotted path, when known (`defaults.window`).
        field: Option<String>,
        /// The parser's explanation, including the valid fields or types.
        message: String,
    },
    /// A value is well-formed TOML but not valid policy.
    #[error("{location}: {field}: {message}")]
    Invalid {
        /// Where.
        location: Location,
        /// The field's dotted path (`cadences.standard.steps[2].offset`).
        field: String,
        /// What is wrong and what would be valid.
        message: String,
    },
    /// The templates could not be loaded or compiled.
    #[error(transparent)]
    Templates(#[from] TemplateError),
    /// Templates compile but fail to render with sample data (an undefined variable such as
    /// `client.nmae`, a bad filter call): every problem, each naming its file and line.
    #[error("{} template problem(s): {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    TemplateChecks(Vec<TemplateError>),
    /// The daemon config's `[events.partners.NAME]` names a partner the policy does not define
    /// (checked by start, `plazo check` and a reload alike).
    #[error(
        "{at}: events.partners.{name}: the policy has no [partners.{name}]; name a partner of the policy (or add it there)"
    )]
    UnknownPartner {
        /// `file:line:column` of the setting in the daemon config.
        at: String,
        /// The partner name.
        name: String,
    },
}

impl PolicyError {
    /// Where in the policy file the problem is, if it is in the policy file.
    pub fn location(&self) -> Option<&Location> {
        match self {
            PolicyError::Syntax { location, .. } | PolicyError::Invalid { location, .. } => {
                Some(location)
            }
            PolicyError::Read { .. }
            | PolicyError::Templates(_)
            | PolicyError::TemplateChecks(_)
            | PolicyError::UnknownPartner { .. } => None,
        }
    }

    /// The dotted path of the field at fault, when known.
    pub fn field(&self) -> Option<&str> {
        match self {
            PolicyError::Syntax { field, .. } => field.as_deref(),
            PolicyError::Invalid { field, .. } => Some(field),
            PolicyError::Read { .. }
            | PolicyError::Templates(_)
            | PolicyError::TemplateChecks(_)
            | PolicyError::UnknownPartner { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_chars() {
        let text = "a = 1\nñandú = \"x\"\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        // "ñandú = " is 8 chars but 10 bytes.
        assert_eq!(line_col(text, 6 + 10), (2, 9));
        assert_eq!(line_col(text, 10_000), (3, 1));
    }
}
