//! Errors of the grid file: each names the file, line, column and key path.

use std::fmt;

/// Longest key path shown in a message, in characters.
const MAX_KEY_CHARS: usize = 100;

/// A grid file that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GridError {
    /// The file could not be read.
    #[error("cannot read grid file {path}: {message}")]
    Io {
        /// The path given.
        path: String,
        /// What the operating system said.
        message: String,
    },
    /// The file is larger than any grid file needs; it was not read.
    #[error("grid file {path} is larger than {limit} bytes; a grid file lists axes, not data")]
    TooLarge {
        /// The path given.
        path: String,
        /// The largest size allowed.
        limit: u64,
    },
    /// The file was read but is not a valid grid.
    #[error("{0}")]
    Invalid(Box<Located>),
}

/// A problem at a place in a grid file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The file (or other origin) of the text.
    pub origin: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Key path such as `experiment[1].grid.learning_rate[0]`; empty when not known.
    pub key: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.origin, self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl GridError {
    /// An error at byte `offset` of `text`.
    pub(crate) fn at(
        origin: &str,
        text: &str,
        offset: usize,
        key: &str,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = line_column(text, offset);
        // A key path quotes the file's keys, which may be of any length and, quoted, hold any
        // character.
        let mut shown: String = printable(&key.chars().take(MAX_KEY_CHARS).collect::<String>());
        if key.chars().count() > MAX_KEY_CHARS {
            shown.push_str("...");
        }
        GridError::Invalid(Box::new(Located {
            origin: origin.to_owned(),
            line,
            column,
            key: shown,
            message: printable(&message.into()),
        }))
    }

    /// Where the error is, when it is in the file's text.
    pub fn location(&self) -> Option<&Located> {
        match self {
            GridError::Io { .. } | GridError::TooLarge { .. } => None,
            GridError::Invalid(located) => Some(located),
        }
    }
}

/// `s` with control characters escaped (`\u{1b}`), so that a message cannot garble a terminal.
fn printable(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters() {
        let text = "ab\ncdé\nf";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(line_column(text, 7), (2, 4));
        assert_eq!(line_column(text, 9), (3, 2));
        assert_eq!(line_column(text, 999), (3, 2));
    }
}
