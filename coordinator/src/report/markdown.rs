//! `report.md`: the document in GitHub Markdown, figures linked as `figures/<stem>.png`.

use super::doc::{Block, Document, Span};
use super::tables::to_markdown;

fn spans(s: &[Span]) -> String {
    s.iter()
        .map(|s| match s {
            Span::Text(t) => t.clone(),
            Span::Strong(t) => format!("**{t}**"),
            Span::Code(t) => format!("`{}`", t.replace('`', "'")),
        })
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
                md.push_str(text);
                md.push_str("\n\n");
            }
            Block::Paragraph(s) => {
                md.push_str(&spans(s));
                md.push_str("\n\n");
            }
            Block::Table { caption, table } => {
                if let Some(c) = caption {
                    md.push_str(&format!("**{c}**\n\n"));
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
                md.push_str(&format!(
                    "![{}](figures/{stem}.png)\n\n",
                    caption.replace(['[', ']'], "")
                ));
            }
        }
    }
    md
}
