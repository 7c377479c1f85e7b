//! Text that comes from outside (a worker's name, a failure message, a cancel reason): what it
//! may hold, and how it is written into each medium that shows it.
//!
//! Checked where it enters ([`check`], applied by `sweep_proto`'s decoders), and escaped again
//! where it is written, one function per medium: [`terminal`] (terminals and logs),
//! [`markdown`] and [`markdown_code`] (Markdown text, table cells and code spans), [`csv`]
//! (a spreadsheet cell). Escaping a string that passed the check changes only what the medium
//! gives a meaning to; a string that did not (an older database, a results file edited by hand)
//! still cannot garble the medium.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` is refused in text from outside: control characters (which move the cursor,
/// erase lines, start escape sequences or break a line), and the invisible characters that
/// make two different strings look the same or reorder what is shown (bidirectional overrides,
/// embeddings, isolates and marks, zero-width characters, the byte order mark, and the Unicode
/// line and paragraph separators).
pub fn forbidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'               // soft hyphen (invisible)
            | '\u{061C}'             // Arabic letter mark
            | '\u{180E}'             // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}' // zero-width space, non-joiner, joiner; LRM, RLM
            | '\u{2028}'..='\u{202E}' // line and paragraph separators; embeddings, overrides
            | '\u{2060}'..='\u{2064}' // word joiner and invisible operators
            | '\u{2066}'..='\u{206F}' // isolates and deprecated format characters
            | '\u{FEFF}'             // zero-width no-break space (byte order mark)
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotations
        )
}

/// Why a text from outside is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// Longer than allowed.
    #[error("{chars} characters long; at most {max} are allowed")]
    TooLong {
        /// Its length, in characters.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// Holds a character that [`forbidden`] refuses.
    #[error(
        "character U+{:04X} at position {position} is not allowed (control, invisible or \
         text-direction characters are refused); use printable text",
        u32::from(*c)
    )]
    Forbidden {
        /// The character.
        c: char,
        /// Its position, in characters from 0.
        position: usize,
    },
}

/// Checks that `s` is at most `max` characters long and holds no [`forbidden`] character.
pub fn check(s: &str, max: usize) -> Result<(), Problem> {
    let mut chars = 0;
    for (position, c) in s.chars().enumerate() {
        if forbidden(c) {
            return Err(Problem::Forbidden { c, position });
        }
        chars = position + 1;
    }
    if chars > max {
        return Err(Problem::TooLong { chars, max });
    }
    Ok(())
}

/// `s` made fit to send: [`forbidden`] characters become spaces, runs of whitespace one space,
/// and it is cut to at most `max` characters (ending with `...` when cut). For text a program
/// writes about itself (an error with a multi-line backtrace) before it goes on the wire.
pub fn one_line(s: &str, max: usize) -> String {
    let mut spaced = String::with_capacity(s.len());
    for c in s.chars() {
        let c = if forbidden(c) || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if !(c == ' ' && spaced.ends_with(' ')) {
            spaced.push(c);
        }
    }
    let line = spaced.trim();
    if line.chars().count() <= max {
        return line.to_owned();
    }
    // Cut, with room for the ellipsis.
    let kept: String = line.chars().take(max.saturating_sub(3)).collect();
    kept.trim_end().to_owned() + "..."
}

/// `s` for a terminal or a log line: every [`forbidden`] character written as its escape
/// (`\n`, `\u{1b}`, `\u{202e}`), so that it shows instead of acting.
pub fn terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(forbidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if forbidden(c) {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c => {
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` as Markdown text that reads as it is, anywhere inline (a paragraph, a heading, a list
/// item, a table cell): [`terminal`]'s escapes, the characters Markdown gives a meaning to
/// backslash-escaped (`*`, `|`, `[`, `` ` ``...; `_` only where it could start or end an
/// emphasis; `>`, `- ` and `+ ` at the start), and HTML's `<` and `&` written as entities, so
/// that `<script>` shows as text.
pub fn markdown(s: &str) -> String {
    let s = terminal(s);
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            // At the start, `>` would make a quote; elsewhere (`cat -> dog`) it is text.
            '\\' | '`' | '*' | '[' | ']' | '|' | '~' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '>' if i == 0 => out.push_str("\\>"),
            // At the start, `- ` or `+ ` would make a list item.
            '-' | '+' if i == 0 && chars.get(1).is_some_and(|c| c.is_whitespace()) => {
                out.push('\\');
                out.push(c);
            }
            '_' => {
                // Inside a word (`Lab1_P1_HiddenL_1`) an underscore is plain text.
                let word = |j: Option<usize>| {
                    j.and_then(|j| chars.get(j))
                        .is_some_and(|c| c.is_alphanumeric())
                };
                if !(word(i.checked_sub(1)) && word(Some(i + 1))) {
                    out.push('\\');
                }
                out.push('_');
            }
            c => out.push(c),
        }
    }
    out
}

/// `s` as the content of a Markdown code span (`` `...` ``) that may sit in a table: no
/// backtick (it would end the span; shown as `'`), no `|` (it would end the cell; shown as
/// `¦`), and [`terminal`]'s escapes.
pub fn markdown_code(s: &str) -> String {
    terminal(s).replace('`', "'").replace('|', "\u{a6}")
}

/// `s` as one CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break, and,
/// when it starts with `=`, `+`, `-`, `@`, a tab or a carriage return and is not a number,
/// prefixed with `'`, so that a spreadsheet shows it as text instead of running it as a
/// formula (CSV injection).
pub fn csv(s: &str) -> Cow<'_, str> {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.parse::<f64>().is_err();
    let quote = s.contains([',', '"', '\n', '\r']);
    if !formula && !quote {
        return Cow::Borrowed(s);
    }
    let mut field = if formula {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if quote {
        field = format!("\"{}\"", field.replace('"', "\"\""));
    }
    Cow::Owned(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_characters_are_the_ones_that_act_or_hide() {
        for c in [
            '\n', '\r', '\t', '\x1b', '\x07', '\x7f', '\u{85}', '\u{9b}', '\u{200b}', '\u{200d}',
            '\u{202e}', '\u{2066}', '\u{2069}', '\u{2028}', '\u{2029}', '\u{feff}', '\u{ad}',
        ] {
            assert!(forbidden(c), "{c:?}");
        }
        for c in ['a', ' ', 'é', 'ß', '中', '✓', '-', '_', '|', '<', '😀'] {
            assert!(!forbidden(c), "{c:?}");
        }
    }

    #[test]
    fn check_names_the_problem() {
        assert_eq!(check("gpu-node-1", 128), Ok(()));
        assert_eq!(check("", 128), Ok(()));
        assert_eq!(
            check("ru\u{200b}n", 128),
            Err(Problem::Forbidden {
                c: '\u{200b}',
                position: 2
            })
        );
        let e = check("a\nsweep finished", 128).unwrap_err();
        assert!(e.to_string().contains("U+000A at position 1"), "{e}");
        assert_eq!(
            check(&"é".repeat(129), 128),
            Err(Problem::TooLong {
                chars: 129,
                max: 128
            })
        );
        assert_eq!(check(&"é".repeat(128), 128), Ok(()));
    }

    #[test]
    fn one_line_makes_any_text_pass_the_check() {
        let backtrace =
            "CUDA out of memory.\nException raised from malloc:\n  frame #0: \x1b[31mx\u{202e}";
        let line = one_line(backtrace, 4096);
        assert_eq!(
            line,
            "CUDA out of memory. Exception raised from malloc: frame #0: [31mx"
        );
        assert_eq!(check(&line, 4096), Ok(()));
        let long = one_line(&"word ".repeat(2000), 100);
        assert_eq!(long.chars().count(), 100);
        assert!(long.ends_with("..."), "{long}");
        assert_eq!(check(&long, 100), Ok(()));
        assert_eq!(one_line("  short  ", 5), "short");
        assert_eq!(one_line("exactly", 7), "exactly");
    }

    #[test]
    fn terminal_text_shows_what_would_act() {
        assert!(matches!(terminal("plain"), Cow::Borrowed("plain")));
        assert_eq!(
            terminal("w\n2026 INFO sweep finished\x1b[2J\u{202e}"),
            "w\\n2026 INFO sweep finished\\u{1b}[2J\\u{202e}"
        );
        assert!(!terminal("a\r\tb\u{2028}").chars().any(forbidden));
    }

    #[test]
    fn markdown_text_reads_as_it_is() {
        assert_eq!(
            markdown("Lab1_P1_HiddenL_1_Activation_ReLU"),
            "Lab1_P1_HiddenL_1_Activation_ReLU"
        );
        assert_eq!(markdown("88.41 ± 0.12 (n=3)"), "88.41 ± 0.12 (n=3)");
        assert_eq!(
            markdown("<script>alert(1)</script>"),
            "&lt;script>alert(1)&lt;/script>"
        );
        assert_eq!(markdown("cat -> dog"), "cat -> dog");
        assert_eq!(markdown("> quote"), "\\> quote");
        assert_eq!(markdown("a | b\nc"), "a \\| b\\\\nc");
        assert_eq!(
            markdown("_x_ *y* [l](http://e) `c` ![i](p) #h ~s~ &amp;"),
            "\\_x\\_ \\*y\\* \\[l\\](http://e) \\`c\\` !\\[i\\](p) \\#h \\~s\\~ &amp;amp;"
        );
        assert!(!markdown("a\u{202e}b\u{0}").chars().any(forbidden));
        assert_eq!(markdown("- item"), "\\- item");
        assert_eq!(markdown("-"), "-");
        assert_eq!(markdown("-0.5"), "-0.5");
    }

    #[test]
    fn markdown_code_cannot_leave_its_span_or_cell() {
        assert_eq!(markdown_code("runs/lab1.toml"), "runs/lab1.toml");
        assert_eq!(markdown_code("a`b|c\nd"), "a'b\u{a6}c\\nd");
    }

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv("plain"), "plain");
        assert_eq!(csv("-0.5"), "-0.5");
        assert_eq!(csv("+3"), "+3");
        assert_eq!(
            csv("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(csv("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv("-cmd|' /C calc'!A0"), "'-cmd|' /C calc'!A0");
        assert_eq!(csv("+1+1"), "'+1+1");
        assert_eq!(csv("\tx"), "'\tx");
        assert_eq!(csv("a,b"), "\"a,b\"");
        assert_eq!(csv("a\nb"), "\"a\nb\"");
    }
}
