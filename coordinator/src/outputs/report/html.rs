//! `report.html`: the document as one self-contained page: inline CSS, every figure as inline
//! SVG, the comparison views ([`super::compare`]'s data as inline JSON, drawn by the inline
//! scripts of [`super::views`]), no external asset, so it opens offline. The markup is
//! well-formed XML (void elements self-closed; scripts and styles in CDATA sections that HTML
//! reads as comments), which the tests check with an XML parser.

use std::collections::HashMap;

use super::doc::{Block, Document, Span};
use super::tables::Table;
use super::views;

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;\
margin:0;color:#1b1f24;background:#fff;line-height:1.45}\
main{max-width:1200px;margin:0 auto;padding:1.5rem 2rem 4rem}\
h1{font-size:1.8rem;margin-bottom:.3rem}\
h2{font-size:1.4rem;margin-top:2.5rem;padding-top:1rem;border-top:2px solid #d0d7de}\
h3{font-size:1.1rem;margin-top:1.8rem}\
nav ul{padding-left:1.2rem}\
code{background:#f3f4f6;padding:0 .25rem;border-radius:3px}\
.table-wrap{overflow-x:auto;margin:.5rem 0 1rem}\
table{border-collapse:collapse;font-size:.92rem}\
caption{text-align:left;font-weight:600;padding:.3rem 0}\
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;white-space:nowrap}\
th{background:#f6f8fa}\
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\
tbody tr:nth-child(even){background:#fafbfc}\
figure{margin:1rem 0 .5rem}\
figure svg{max-width:100%;height:auto;display:block;border:1px solid #eaeef2}\
figcaption{font-size:.9rem;color:#57606a;margin-top:.3rem}\
";

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn spans(s: &[Span]) -> String {
    s.iter()
        .map(|s| match s {
            Span::Text(t) => escape(t),
            Span::Strong(t) => format!("<strong>{}</strong>", escape(t)),
            Span::Code(t) => format!("<code>{}</code>", escape(t)),
            Span::Link { text, href } => {
                format!("<a href=\"{}\">{}</a>", escape(href), escape(text))
            }
        })
        .collect()
}

fn table(caption: Option<&str>, t: &Table) -> String {
    let class = |i: usize| {
        if t.is_numeric(i) {
            " class=\"num\""
        } else {
            ""
        }
    };
    let mut h = String::from("<div class=\"table-wrap\"><table>");
    if let Some(c) = caption {
        h.push_str(&format!("<caption>{}</caption>", escape(c)));
    }
    h.push_str("<thead><tr>");
    for (i, c) in t.header.iter().enumerate() {
        h.push_str(&format!("<th{}>{}</th>", class(i), escape(c)));
    }
    h.push_str("</tr></thead><tbody>");
    for row in &t.rows {
        h.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            h.push_str(&format!("<td{}>{}</td>", class(i), escape(c)));
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table></div>\n");
    h
}

/// Strips an XML prolog or doctype, if any, so the SVG can sit inside HTML.
fn inline_svg(svg: &str) -> &str {
    svg.find("<svg").map_or(svg, |i| &svg[i..])
}

/// An inline `<script>` whose text is kept from an XML parser by a CDATA section that JavaScript
/// reads as comments.
fn script(js: &str) -> String {
    format!("<script>//<![CDATA[\n{js}\n//]]></script>\n")
}

/// An inline `<style>`, likewise.
fn style(css: &str) -> String {
    format!("<style>/*<![CDATA[*/\n{css}\n/*]]>*/</style>\n")
}

/// The comparison views' section: its place, its data and the scripts that draw it; the rows of
/// its data go between the two parts (`compare`: the data's text before and after them).
fn compare_section(compare: &(String, String)) -> (String, String) {
    let mut h = String::from(
        "<h2 id=\"compare\">Compare trials</h2>\n<p>Every trial of an experiment as one line \
         across its hyperparameters and its final test accuracy (drag along an axis to select a \
         range: the table below then lists only those trials), how much of the test \
         accuracy's variance each hyperparameter explains, and every trial in a table (click a \
         header to sort).</p>\n<div id=\"sweep-compare\"><noscript><p>The comparison views \
         need JavaScript; the tables below and <code>results.csv</code> hold the same \
         numbers.</p></noscript></div>\n",
    );
    h.push_str("<script type=\"application/json\" id=\"sweep-compare-data\">");
    h.push_str(&compare.0);
    let mut h2 = compare.1.clone();
    h2.push_str("</script>\n");
    h2.push_str(&style(views::VENDOR_CSS));
    h2.push_str(&style(views::COMPARE_CSS));
    h2.push_str(&script(views::VENDOR_JS));
    h2.push_str(&script(views::COMPARE_JS));
    h2.push_str(&script(
        "SweepCompare.report(JSON.parse(document.getElementById(\"sweep-compare-data\").textContent));",
    ));
    (h, h2)
}

/// Renders `doc` as one page and the byte offset in it where the comparison views' rows go:
/// `compare` is their data's text before and after the rows
/// ([`super::compare::embedded_parts`]).
pub fn render_parts(
    doc: &Document,
    svgs: &HashMap<&str, &str>,
    compare: &(String, String),
) -> (String, usize) {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n");
    h.push_str(&format!("<title>{}</title>\n", escape(&doc.title)));
    h.push_str(&format!(
        "<style>{STYLE}</style>\n</head>\n<body>\n<main>\n"
    ));
    let contents: Vec<String> =
        std::iter::once("<li><a href=\"#compare\">Compare trials</a></li>".to_owned())
            .chain(doc.blocks.iter().filter_map(|b| match b {
                Block::Heading {
                    level: 2,
                    text,
                    id: Some(id),
                } => Some(format!(
                    "<li><a href=\"#{}\">{}</a></li>",
                    escape(id),
                    escape(text)
                )),
                _ => None,
            }))
            .collect();
    let mut nav_done = false;
    let mut split = 0;
    for block in &doc.blocks {
        match block {
            Block::Heading { level, text, id } => {
                if *level >= 2 && !nav_done {
                    h.push_str(&format!("<nav><ul>{}</ul></nav>\n", contents.join("")));
                    let (a, b) = compare_section(compare);
                    h.push_str(&a);
                    split = h.len();
                    h.push_str(&b);
                    nav_done = true;
                }
                let level = (*level).clamp(1, 6);
                let id = id
                    .as_deref()
                    .map_or_else(String::new, |i| format!(" id=\"{}\"", escape(i)));
                h.push_str(&format!("<h{level}{id}>{}</h{level}>\n", escape(text)));
            }
            Block::Paragraph(s) => h.push_str(&format!("<p>{}</p>\n", spans(s))),
            Block::Table { caption, table: t } => h.push_str(&table(caption.as_deref(), t)),
            Block::List(items) => {
                h.push_str("<ul>");
                for item in items {
                    h.push_str(&format!("<li>{}</li>", spans(item)));
                }
                h.push_str("</ul>\n");
            }
            Block::Figure { stem, caption } => {
                let stem_e = escape(stem);
                h.push_str(&format!("<figure id=\"fig-{stem_e}\">\n"));
                if let Some(svg) = svgs.get(stem.as_str()) {
                    h.push_str(inline_svg(svg));
                    h.push('\n');
                }
                h.push_str(&format!(
                    "<figcaption>{} (<a href=\"figures/{stem_e}.png\">PNG</a>, \
                     <a href=\"figures/{stem_e}.svg\">SVG</a>)</figcaption>\n</figure>\n",
                    escape(caption)
                ));
            }
        }
    }
    if !nav_done {
        let (a, b) = compare_section(compare);
        h.push_str(&a);
        split = h.len();
        h.push_str(&b);
    }
    h.push_str("</main>\n</body>\n</html>\n");
    (h, split)
}
