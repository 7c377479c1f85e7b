//! `report.md`: the document in GitHub Markdown, figures linked as `figures/<stem>.png`.
//! Every text of the document is written with `sweep_common::text::markdown` (code spans with
//! `markdown_code`): a name, a title or a failure message shows as it is, never as markup or
//! HTML, and never breaks a table.

use sweep_common::text::{markdown, markdown_code};

use super::doc::{Block, Document, Span};
use super::tables::to_markdown;

fn spans(s: &[Span]) -> String {
    s.iter()
        .map(|s| match s {
            Span::Text(t) => markdown(t),
            Span::Strong(t) => format!("**{}**", markdown(t)),
            Span::Code(t) => format!("`{}`", markdown_code(t)),
            Span::Link { text, href } => format!("[{}](<{}>)", markdown(text), href_text(href)),
        })
        .collect()
}

/// A link target as Markdown's `<...>` form takes it: nothing that would end it.
fn href_text(href: &str) -> String {
    href.chars()
        .filter(|c| !matches!(c, '<' | '>' | '\n' | '\r'))
        .collect()
}

/// Renders `doc` as Markdown.
pub fn render(doc: &Document) -> String {
    let mut md = String::new();
    for block in &doc.blocks {
        match block {
            Block::Heading { level, text, .. } => {
                md.push_str(&"#".repeat(usize::from(*level).clamp(1, 6)));
                md.push(' ');
                md.push_str(&markdown(text));
                md.push_str("\n\n");
            }
            Block::Paragraph(s) => {
                md.push_str(&spans(s));
                md.push_str("\n\n");
            }
            Block::Table { caption, table } => {
                if let Some(c) = caption {
                    md.push_str(&format!("**{}**\n\n", markdown(c)));
                }
                md.push_str(&to_markdown(table));
                md.push('\n');
            }
            Block::List(items) => {
                for item in items {
                    md.push_str(&format!("- {}\n", spans(item)));
                }
                md.push('\n');
            }
            Block::Figure { stem, caption } => {
                md.push_str(&format!("![{}](figures/{stem}.png)\n\n", markdown(caption)));
            }
        }
    }
    md
}
