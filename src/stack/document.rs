//! The YAML document as a tree of nodes that remember where they were written (line, column, YAML path).

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle};

use super::yaml_path::YamlPath;

/// A place in the source: 1-based line, 0-based column in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Mark {
    pub(crate) index: usize,
    pub(crate) line: usize,
    pub(crate) col: usize,
}

impl From<Marker> for Mark {
    fn from(m: Marker) -> Self {
        Self {
            index: m.index(),
            line: m.line(),
            col: m.col(),
        }
    }
}

/// A range of characters on one source line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) mark: Mark,
    pub(crate) len: usize,
}

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Block,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Scalar { value: String, style: Style },
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// One `key: value` pair of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) key_span: Span,
    /// The YAML path of the mapping that holds this entry.
    pub(crate) parent: YamlPath,
    pub(crate) value: Node,
}

/// A YAML node with its position and its path from the document root (`services.nginx.ports[0]`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) kind: Kind,
    pub(crate) mark: Mark,
    pub(crate) path: YamlPath,
    /// The key this node is the value of, if any.
    pub(crate) key: Option<Span>,
}

impl Node {
    pub(crate) fn as_map(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// A null: `~`, `null` or nothing at all.
    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { value, style: Style::Plain }
            if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// What kind of value this is, for "expected X, found Y" messages.
    pub(crate) fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Map(_) => "a map",
            Kind::Seq(_) => "a list",
            Kind::Scalar { .. } if self.is_null() => "nothing",
            Kind::Scalar { value, style } => {
                if *style != Style::Plain {
                    "a string"
                } else if matches!(
                    value.as_str(),
                    "true" | "True" | "TRUE" | "false" | "False" | "FALSE"
                ) {
                    "a boolean"
                } else if value.parse::<f64>().is_ok() {
                    "a number"
                } else {
                    "a string"
                }
            }
        }
    }

    /// Where to point at this node: the scalar itself, or for collections and empty values the key that holds it.
    pub(crate) fn span(&self, source: &Source) -> Span {
        match &self.kind {
            Kind::Scalar { value, style } if !(self.is_null() && value.is_empty()) => Span {
                mark: self.mark,
                len: source.token_len(self.mark, value, *style),
            },
            _ => self.key.unwrap_or(Span {
                mark: self.mark,
                len: 1,
            }),
        }
    }
}

/// The text of a stack file and the name it is shown under.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) name: String,
    lines: Vec<String>,
}

impl Source {
    pub(crate) fn new(name: impl Into<String>, text: &str) -> Self {
        Self {
            name: name.into(),
            lines: text.lines().map(str::to_owned).collect(),
        }
    }

    /// The text of a 1-based line, if it exists.
    pub(crate) fn line(&self, line: usize) -> Option<&str> {
        line.checked_sub(1)
            .and_then(|i| self.lines.get(i))
            .map(String::as_str)
    }

    /// The characters of a line from a 0-based column on.
    pub(crate) fn rest(&self, mark: Mark) -> String {
        self.line(mark.line)
            .map(|l| l.chars().skip(mark.col).collect())
            .unwrap_or_default()
    }

    /// How many characters a scalar token takes on its first line.
    fn token_len(&self, mark: Mark, value: &str, style: Style) -> usize {
        let rest: Vec<char> = self.rest(mark).chars().collect();
        let trimmed = rest
            .iter()
            .rposition(|c| !c.is_whitespace())
            .map_or(0, |p| p + 1);
        let len = match style {
            Style::Plain | Style::Block => {
                let first = value.lines().next().unwrap_or("").chars().count();
                first.min(trimmed)
            }
            Style::SingleQuoted | Style::DoubleQuoted => {
                let quote = if style == Style::SingleQuoted {
                    '\''
                } else {
                    '"'
                };
                let mut i = 1;
                let mut end = None;
                while i < rest.len() {
                    let c = rest[i];
                    if style == Style::DoubleQuoted && c == '\\' {
                        i += 2;
                        continue;
                    }
                    if c == quote {
                        if style == Style::SingleQuoted && rest.get(i + 1) == Some(&'\'') {
                            i += 2;
                            continue;
                        }
                        end = Some(i + 1);
                        break;
                    }
                    i += 1;
                }
                end.unwrap_or(trimmed)
            }
        };
        len.max(1)
    }

    /// Finds `needle` on the line of `mark`, at or after its column; used to point inside a string.
    pub(crate) fn find_on_line(&self, mark: Mark, needle: &str) -> Option<Span> {
        let line = self.line(mark.line)?;
        let chars: Vec<char> = line.chars().collect();
        let needle: Vec<char> = needle.chars().collect();
        if needle.is_empty() {
            return None;
        }
        (mark.col..chars.len())
            .find(|&start| chars[start..].starts_with(&needle))
            .map(|col| Span {
                mark: Mark {
                    index: mark.index + (col - mark.col),
                    line: mark.line,
                    col,
                },
                len: needle.len(),
            })
    }
}

/// Why a document could not be read as YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) message: String,
    pub(crate) span: Span,
    pub(crate) help: String,
}

/// Parses one YAML document into a tree of located nodes. Duplicate keys and non-string keys are errors.
pub(crate) fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, false) {
        return Err(scan_error(text, &e));
    }
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.root.unwrap_or(Node {
        kind: Kind::Map(Vec::new()),
        mark: Mark {
            index: 0,
            line: 1,
            col: 0,
        },
        path: YamlPath::default(),
        key: None,
    }))
}

fn scan_error(text: &str, e: &ScanError) -> SyntaxError {
    let mut mark = Mark::from(*e.marker());
    if e.info().contains("tab") {
        // The scanner reports where the token began; point at the tab itself.
        let (mut line, mut col) = (mark.line, mark.col);
        for (index, c) in text.chars().enumerate().skip(mark.index) {
            if c == '\t' {
                mark = Mark { index, line, col };
                break;
            }
            if c == '\n' {
                line += 1;
                col = 0;
            } else {
                col += 1;
            }
        }
    }
    SyntaxError {
        message: format!("invalid YAML: {}", e.info()),
        span: Span { mark, len: 1 },
        help: "fix the YAML syntax here (indent with spaces, quote values that contain `: ` or start with `{`, `[`, `*`, `&`)"
            .to_owned(),
    }
}

/// A collection being filled while events arrive.
#[derive(Debug)]
enum Frame {
    Seq {
        node: Node,
        anchor: usize,
    },
    Map {
        node: Node,
        anchor: usize,
        pending_key: Option<(Rc<str>, Span)>,
        /// The line of each key so far, to find a duplicate in one look-up.
        lines: HashMap<Rc<str>, usize>,
    },
}

#[derive(Debug, Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: BTreeMap<usize, Node>,
    error: Option<SyntaxError>,
    started: bool,
    /// Nodes copied through aliases so far, to refuse alias bombs.
    copied: usize,
    /// Bytes of keys and scalars copied through aliases so far.
    copied_bytes: usize,
}

/// How many nodes aliases may copy in one document.
const MAX_COPIED: usize = 100_000;

/// How many bytes of keys and scalars aliases may copy in one document: a long string repeated by many
/// aliases costs its length each time.
const MAX_COPIED_BYTES: usize = 4 << 20;

/// How deep lists and mappings may nest. A stack file nests about six levels; the limit keeps every path and
/// every walk over the tree short.
pub(crate) const MAX_DEPTH: usize = 64;

/// `(nodes, bytes)` a copy of `node` costs.
fn size(node: &Node) -> (usize, usize) {
    match &node.kind {
        Kind::Scalar { value, .. } => (1, value.len()),
        Kind::Seq(items) => items.iter().map(size).fold((1, 0), add),
        Kind::Map(entries) => entries
            .iter()
            .map(|e| add((1, e.key.len()), size(&e.value)))
            .fold((1, 0), add),
    }
}

fn add(a: (usize, usize), b: (usize, usize)) -> (usize, usize) {
    (a.0.saturating_add(b.0), a.1.saturating_add(b.1))
}

impl Builder {
    /// The path and key a new child node gets, from the innermost open collection.
    fn child_place(&self, mark: Mark) -> (YamlPath, Option<Span>) {
        match self.stack.last() {
            Some(Frame::Seq { node, .. }) => {
                let n = match &node.kind {
                    Kind::Seq(items) => items.len(),
                    _ => 0,
                };
                (node.path.index(n), None)
            }
            Some(Frame::Map {
                node,
                pending_key: Some((key, span)),
                ..
            }) => (node.path.key(Rc::clone(key)), Some(*span)),
            Some(Frame::Map { node, .. }) => (node.path.clone(), Some(Span { mark, len: 1 })),
            None => (YamlPath::default(), None),
        }
    }

    /// Whether the next node is a key of the innermost mapping.
    fn expecting_key(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame::Map {
                pending_key: None,
                ..
            })
        )
    }

    fn fail(&mut self, message: String, span: Span, help: &str) {
        if self.error.is_none() {
            self.error = Some(SyntaxError {
                message,
                span,
                help: help.to_owned(),
            });
        }
    }

    fn push_key(&mut self, key: &str, span: Span) {
        let mut duplicate = None;
        if let Some(Frame::Map {
            node,
            pending_key,
            lines,
            ..
        }) = self.stack.last_mut()
        {
            let key: Rc<str> = key.into();
            match lines.get(&key) {
                Some(first_line) => duplicate = Some((*first_line, node.path.clone())),
                None => {
                    lines.insert(Rc::clone(&key), span.mark.line);
                }
            }
            *pending_key = Some((key, span));
        }
        if let Some((first_line, path)) = duplicate {
            let place = if path.is_empty() {
                "at the top level".to_owned()
            } else {
                format!("in `{path}`")
            };
            self.fail(
                format!("duplicate key `{key}` {place}"),
                span,
                &format!("`{key}` is already set on line {first_line}: keep one of them"),
            );
        }
    }

    /// A copy of an anchored node, placed where the alias is.
    fn alias(&mut self, id: usize, mark: Mark) {
        let Some((nodes, bytes)) = self.anchors.get(&id).map(size) else {
            return;
        };
        if self.expecting_key() {
            self.fail(
                "a key must be a plain string".to_owned(),
                Span { mark, len: 1 },
                "write keys as `name: value`",
            );
            return;
        }
        self.copied = self.copied.saturating_add(nodes);
        self.copied_bytes = self.copied_bytes.saturating_add(bytes);
        if self.copied > MAX_COPIED || self.copied_bytes > MAX_COPIED_BYTES {
            self.fail(
                "aliases expand to too many values".to_owned(),
                Span { mark, len: 1 },
                "write the values out, or use fewer nested aliases",
            );
            return;
        }
        let Some(mut node) = self.anchors.get(&id).cloned() else {
            return;
        };
        let (path, key) = self.child_place(mark);
        node.key = key;
        node.path = path;
        self.attach(node, 0);
    }

    /// Attaches a finished node to its parent (or makes it the root).
    fn attach(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            Some(Frame::Seq { node: parent, .. }) => {
                if let Kind::Seq(items) = &mut parent.kind {
                    items.push(node);
                }
            }
            Some(Frame::Map {
                node: parent,
                pending_key,
                ..
            }) => {
                if let (Some((key, key_span)), Kind::Map(entries)) =
                    (pending_key.take(), &mut parent.kind)
                {
                    if entries.is_empty() && key_span.mark.index < parent.mark.index {
                        parent.mark = key_span.mark;
                    }
                    entries.push(Entry {
                        key: key.to_string(),
                        key_span,
                        parent: parent.path.clone(),
                        value: node,
                    });
                }
            }
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, marker: Marker) {
        if self.error.is_some() {
            return;
        }
        let mark = Mark::from(marker);
        match ev {
            Event::DocumentStart => {
                if self.started {
                    self.fail(
                        "a stack file holds one YAML document".to_owned(),
                        Span { mark, len: 3 },
                        "remove this `---` and what follows, or move it to its own file",
                    );
                }
                self.started = true;
            }
            Event::Scalar(value, style, anchor, _tag) => {
                let style = match style {
                    TScalarStyle::SingleQuoted => Style::SingleQuoted,
                    TScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                    TScalarStyle::Literal | TScalarStyle::Folded => Style::Block,
                    TScalarStyle::Plain => Style::Plain,
                };
                if self.expecting_key() {
                    let len = value.chars().count().max(1) + usize::from(style != Style::Plain) * 2;
                    self.push_key(&value, Span { mark, len });
                    return;
                }
                let (path, key) = self.child_place(mark);
                let node = Node {
                    kind: Kind::Scalar { value, style },
                    mark,
                    path,
                    key,
                };
                self.attach(node, anchor);
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.expecting_key() {
                    self.fail(
                        "a key must be a plain string".to_owned(),
                        Span { mark, len: 1 },
                        "write keys as `name: value`",
                    );
                    return;
                }
                if self.stack.len() >= MAX_DEPTH {
                    self.fail(
                        format!("lists and maps nest deeper than {MAX_DEPTH} levels"),
                        Span { mark, len: 1 },
                        "a stack file nests a few levels: write the values out flat",
                    );
                    return;
                }
                let (path, key) = self.child_place(mark);
                let is_seq = matches!(ev, Event::SequenceStart(..));
                let node = Node {
                    kind: if is_seq {
                        Kind::Seq(Vec::new())
                    } else {
                        Kind::Map(Vec::new())
                    },
                    mark,
                    path,
                    key,
                };
                self.stack.push(if is_seq {
                    Frame::Seq { node, anchor }
                } else {
                    Frame::Map {
                        node,
                        anchor,
                        pending_key: None,
                        lines: HashMap::new(),
                    }
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(Frame::Seq { node, anchor } | Frame::Map { node, anchor, .. }) =
                    self.stack.pop()
                {
                    self.attach(node, anchor);
                }
            }
            Event::Alias(id) => self.alias(id, mark),
            _ => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nodes_know_their_path_and_position() {
        let root = parse("a:\n  b: [x, {c: d}]\n  e:\n    - f: 1\n").unwrap();
        let a = &root.as_map().unwrap()[0].value;
        let entries = a.as_map().unwrap();
        assert_eq!(entries[0].key, "b");
        assert_eq!(entries[0].parent, "a");
        let Kind::Seq(items) = &entries[0].value.kind else {
            panic!("expected a list")
        };
        assert_eq!(items[1].path, "a.b[1]");
        assert_eq!(items[1].as_map().unwrap()[0].value.path, "a.b[1].c");
        assert_eq!((items[1].mark.line, items[1].mark.col), (2, 9));
        let Kind::Seq(e) = &entries[1].value.kind else {
            panic!("expected a list")
        };
        // a block map inside a list starts at its first key
        assert_eq!((e[0].mark.line, e[0].mark.col), (4, 6));
    }

    #[test]
    fn duplicate_keys_are_refused_at_the_second() {
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.message, "duplicate key `a` at the top level");
        assert_eq!((err.span.mark.line, err.span.mark.col), (3, 0));
    }

    #[test]
    fn token_length_covers_quotes() {
        let text = "k: \"a\\\"b\" # c\n";
        let root = parse(text).unwrap();
        let src = Source::new("f", text);
        let v = &root.as_map().unwrap()[0].value;
        assert_eq!(v.span(&src).len, 6);
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut lines = vec!["a0: &a0 [x, x, x, x, x, x, x, x, x, x]".to_owned()];
        for i in 1..8 {
            let prev = i - 1;
            let refs = vec![format!("*a{prev}"); 10].join(", ");
            lines.push(format!("a{i}: &a{i} [{refs}]"));
        }
        let text = lines.join("\n");
        let err = parse(&text).unwrap_err();
        assert_eq!(err.message, "aliases expand to too many values");
    }

    #[test]
    fn aliases_copy_the_anchored_node() {
        let root = parse("a: &x {q: 1}\nb: *x\n").unwrap();
        let b = &root.as_map().unwrap()[1].value;
        assert_eq!(b.path, "b");
        assert_eq!(b.as_map().unwrap()[0].key, "q");
    }
}
