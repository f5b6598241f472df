//! A small element tree over `quick-xml`, keeping the line of each element for error messages.

use std::path::Path;

use quick_xml::escape::{partial_escape, unescape};
use quick_xml::events::Event;
use quick_xml::Reader;

use crate::data::error::{DataError, DataResult};

/// One XML element: name, text content, children and the line where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct XmlNode {
    /// Tag name.
    pub name: String,
    /// Concatenated text content (trimmed).
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<XmlNode>,
    /// 1-based line of the start tag.
    pub line: usize,
}

impl XmlNode {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&XmlNode> {
        self.children.iter().find(|c| c.name == name)
    }

    /// All children named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a XmlNode> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the required child `name`, or an error naming `path` and this element's line.
    pub fn required_text(&self, name: &str, path: &Path) -> DataResult<&XmlNode> {
        self.child(name).ok_or_else(|| {
            DataError::parse(
                path,
                self.line,
                format!("<{}> has no <{name}> element", self.name),
            )
        })
    }

    /// The text of the required child `name` parsed as a finite number.
    pub fn required_number(&self, name: &str, path: &Path) -> DataResult<f64> {
        let node = self.required_text(name, path)?;
        node.text
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                DataError::parse(
                    path,
                    node.line,
                    format!("<{name}> holds `{}`, not a number", node.text),
                )
            })
    }
}

/// The byte offsets of a text's newlines, to turn byte positions into line numbers in
/// logarithmic time (a file is scanned once, not once per element).
struct LineIndex {
    newlines: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        LineIndex {
            newlines: text
                .bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i)
                .collect(),
        }
    }

    /// The 1-based line of byte `byte`.
    fn line_of(&self, byte: u64) -> usize {
        let byte = usize::try_from(byte).unwrap_or(usize::MAX);
        self.newlines.partition_point(|&newline| newline < byte) + 1
    }
}

/// Parses `text` (the content of `path`) into its root element.
pub fn parse_xml(text: &str, path: &Path) -> DataResult<XmlNode> {
    let lines = LineIndex::new(text);
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<XmlNode> = Vec::new();
    let mut root: Option<XmlNode> = None;
    loop {
        let position = reader.buffer_position();
        let event = reader.read_event().map_err(|e| {
            DataError::parse(
                path,
                lines.line_of(reader.error_position()),
                format!("malformed XML: {e}"),
            )
        })?;
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(DataError::parse(
                    path,
                    lines.line_of(position),
                    "content after the root element",
                ));
            }
            Event::Start(start) => stack.push(XmlNode {
                name: start.name().as_ref().to_string(),
                text: String::new(),
                children: Vec::new(),
                line: lines.line_of(position),
            }),
            Event::Empty(start) => {
                let node = XmlNode {
                    name: start.name().as_ref().to_string(),
                    text: String::new(),
                    children: Vec::new(),
                    line: lines.line_of(position),
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Text(t) => {
                if let Some(node) = stack.last_mut() {
                    node.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(node) = stack.last_mut() {
                    node.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let name: &str = &r;
                let reference = format!("&{name};");
                let resolved = unescape(&reference).map_err(|_| {
                    DataError::parse(
                        path,
                        lines.line_of(position),
                        format!("unknown entity `&{name};`"),
                    )
                })?;
                if let Some(node) = stack.last_mut() {
                    node.text.push_str(&resolved);
                }
            }
            Event::End(_) => {
                let mut node = stack.pop().ok_or_else(|| {
                    DataError::parse(
                        path,
                        lines.line_of(position),
                        "closing tag without an opening tag",
                    )
                })?;
                node.text = node.text.trim().to_string();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(DataError::parse(
            path,
            open.line,
            format!("<{}> is never closed (truncated file?)", open.name),
        ));
    }
    root.ok_or_else(|| DataError::parse(path, 1, "no XML element in the file"))
}

/// Escapes text for an XML element: `&`, `<`, `>` (and `\r`, which XML would read as `\n`).
pub fn escape(text: &str) -> String {
    partial_escape(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_with_lines_and_entities() {
        let root = parse_xml("<a>\n <b>x &amp; y</b>\n <c/>\n</a>", Path::new("t.xml")).unwrap();
        assert_eq!(root.name, "a");
        assert_eq!(root.child("b").unwrap().text, "x & y");
        assert_eq!(root.child("b").unwrap().line, 2);
        assert_eq!(root.child("c").unwrap().line, 3);
        let refs = parse_xml("<a>&lt;&#65;&#x42;&apos;</a>", Path::new("t.xml")).unwrap();
        assert_eq!(refs.text, "<AB'");
        let err = parse_xml("<a>&nbsp;</a>", Path::new("t.xml")).unwrap_err();
        assert!(err.to_string().contains("unknown entity `&nbsp;`"), "{err}");
    }

    #[test]
    fn escaped_text_reads_back() {
        let text = "a & b <c> \"d\"";
        assert_eq!(escape(text), "a &amp; b &lt;c&gt; \"d\"");
        let xml = format!("<a>{}</a>", escape(text));
        assert_eq!(parse_xml(&xml, Path::new("t.xml")).unwrap().text, text);
    }

    #[test]
    fn truncated_xml_is_an_error_with_a_line() {
        let err = parse_xml("<a>\n<b>1</b>\n<c>", Path::new("t.xml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.xml:"), "{err}");
    }
}
