//! A self-contained HTML page: inline style, images as base64 data URIs, so report.html can
//! be mailed or archived alone.

use base64::Engine;

use super::plots::Png;

/// The page being written, section by section.
pub struct Page {
    body: String,
    toc: Vec<(String, String)>,
    title: String,
    images: usize,
}

/// Escapes text for HTML element content and attribute values.
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

/// A table cell: text, or text shown bold (the best value of a row).
pub enum Cell {
    /// Plain text.
    Text(String),
    /// Right-aligned number text.
    Num(String),
    /// Right-aligned bold number text.
    Best(String),
}

const STYLE: &str = "
body { font-family: 'DejaVu Sans', Verdana, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; }
th { background: #f3f3f3; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.best { text-align: right; font-weight: bold; font-variant-numeric: tabular-nums; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: 0.8em; overflow-x: auto;
      font-size: 0.85em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
.wide { overflow-x: auto; }
.note { color: #666; font-style: italic; }
.pair { display: flex; flex-wrap: wrap; gap: 1em; }
.pair figure { flex: 1 1 480px; }
";

impl Page {
    /// Starts a page with a title.
    pub fn new(title: &str) -> Self {
        Page {
            body: String::new(),
            toc: Vec::new(),
            title: title.to_string(),
            images: 0,
        }
    }

    /// Opens a section with a heading (and an entry in the contents line).
    pub fn section(&mut self, id: &str, heading: &str) {
        self.toc.push((id.to_string(), heading.to_string()));
        self.body.push_str(&format!(
            "<h2 id=\"{}\">{}</h2>\n",
            escape(id),
            escape(heading)
        ));
    }

    /// A sub-heading inside a section.
    pub fn subheading(&mut self, text: &str) {
        self.body.push_str(&format!("<h3>{}</h3>\n", escape(text)));
    }

    /// A paragraph of plain text.
    pub fn para(&mut self, text: &str) {
        self.body.push_str(&format!("<p>{}</p>\n", escape(text)));
    }

    /// A note on what is missing and why.
    pub fn note(&mut self, text: &str) {
        self.body
            .push_str(&format!("<p class=\"note\">{}</p>\n", escape(text)));
    }

    /// Text shown verbatim.
    pub fn pre(&mut self, text: &str) {
        self.body
            .push_str(&format!("<pre>{}</pre>\n", escape(text)));
    }

    /// A table with a header row (left out when every header is empty: a key-value table).
    pub fn table(&mut self, header: &[String], rows: &[Vec<Cell>]) {
        // Wide tables (clusters.jsonl has many columns) scroll instead of widening the page.
        let mut t = String::from("<div class=\"wide\"><table>\n");
        if header.iter().any(|h| !h.is_empty()) {
            t.push_str("<tr>");
            for h in header {
                t.push_str(&format!("<th>{}</th>", escape(h)));
            }
            t.push_str("</tr>\n");
        }
        for row in rows {
            t.push_str("<tr>");
            for c in row {
                t.push_str(&match c {
                    Cell::Text(s) => format!("<td>{}</td>", escape(s)),
                    Cell::Num(s) => format!("<td class=\"num\">{}</td>", escape(s)),
                    Cell::Best(s) => format!("<td class=\"best\">{}</td>", escape(s)),
                });
            }
            t.push_str("</tr>\n");
        }
        t.push_str("</table></div>\n");
        self.body.push_str(&t);
    }

    /// Embeds charts, side by side when there are several.
    pub fn figures(&mut self, pngs: &[&Png]) {
        if pngs.len() > 1 {
            self.body.push_str("<div class=\"pair\">\n");
        }
        for png in pngs {
            let data = base64::engine::general_purpose::STANDARD.encode(&png.bytes);
            self.body.push_str(&format!(
                "<figure><img src=\"data:image/png;base64,{data}\" alt=\"{}\">\
                 <figcaption>{}</figcaption></figure>\n",
                escape(&png.caption),
                escape(&png.caption)
            ));
            self.images += 1;
        }
        if pngs.len() > 1 {
            self.body.push_str("</div>\n");
        }
    }

    /// Number of images embedded so far.
    pub fn images(&self) -> usize {
        self.images
    }

    /// The whole document.
    pub fn finish(self, subtitle: &str) -> String {
        let nav: Vec<String> = self
            .toc
            .iter()
            .map(|(id, h)| format!("<a href=\"#{}\">{}</a>", escape(id), escape(h)))
            .collect();
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
             <h1>{title}</h1>\n<p>{subtitle}</p>\n<nav>{nav}</nav>\n{body}</body>\n</html>\n",
            title = escape(&self.title),
            subtitle = escape(subtitle),
            nav = nav.join(" "),
            body = self.body,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_everywhere() {
        let mut p = Page::new("a <b>");
        p.section("s", "x & y");
        p.pre("<script>");
        p.table(&["<th>".into()], &[vec![Cell::Text("\"q\"".into())]]);
        let html = p.finish("sub");
        assert!(html.contains("<title>a &lt;b&gt;</title>"));
        assert!(html.contains("x &amp; y"));
        assert!(html.contains("<pre>&lt;script&gt;</pre>"));
        assert!(html.contains("<th>&lt;th&gt;</th>"));
        assert!(html.contains("&quot;q&quot;"));
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn figures_are_data_uris() {
        let mut p = Page::new("t");
        let png = Png {
            name: "n".into(),
            caption: "c".into(),
            bytes: vec![1, 2, 3],
        };
        p.figures(&[&png]);
        assert_eq!(p.images(), 1);
        assert!(p.finish("").contains("src=\"data:image/png;base64,AQID\""));
    }
}
