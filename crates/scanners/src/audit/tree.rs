//! A small document tree with file and line positions, loaded from YAML (saphyr) or TOML
//! (toml_edit), so every rule can point at `file:line`.

use saphyr::{LoadableYamlNode, MarkedYamlOwned, ScalarOwned, YamlDataOwned};

use super::AuditError;

/// Where a node came from: index into the audit's file table and a 1-based line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    pub file: usize,
    pub line: u32,
}

/// A scalar: its value after interpolation and the text as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scalar {
    pub text: String,
    pub raw: String,
}

/// One node of a loaded document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Null,
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A key and its value in a mapping.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

/// A node with its position and an optional compose merge tag (`!reset`, `!override`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub pos: Pos,
    pub tag: Option<String>,
    pub kind: Kind,
}

impl Node {
    pub fn new(pos: Pos, kind: Kind) -> Self {
        Node {
            pos,
            tag: None,
            kind,
        }
    }

    pub fn scalar(pos: Pos, text: impl Into<String>) -> Self {
        let text = text.into();
        Node::new(
            pos,
            Kind::Scalar(Scalar {
                raw: text.clone(),
                text,
            }),
        )
    }

    /// The value of a mapping key.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|e| &e.value)
    }

    /// The entry of a mapping key.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    /// The entries of a mapping (empty for anything else).
    pub fn entries(&self) -> &[Entry] {
        match &self.kind {
            Kind::Map(entries) => entries,
            _ => &[],
        }
    }

    /// The items of a sequence (empty for anything else).
    pub fn items(&self) -> &[Node] {
        match &self.kind {
            Kind::Seq(items) => items,
            _ => &[],
        }
    }

    /// The text of a scalar.
    pub fn text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s) => Some(&s.text),
            _ => None,
        }
    }

    /// A scalar read as a boolean the way Compose and Traefik do.
    pub fn as_bool(&self) -> Option<bool> {
        self.text().and_then(parse_bool)
    }

    pub fn is_map(&self) -> bool {
        matches!(self.kind, Kind::Map(_))
    }
}

/// Reads `true`/`false` (any case) and YAML 1.1 style yes/no/on/off.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// Leading structure characters (indentation, `- `, `? `) allowed on one line: block nesting
/// can be no deeper than this, which keeps the recursive parser and drop within the stack.
const MAX_LINE_PREFIX: usize = 1000;

/// Loads the first YAML document of `src`. An empty file gives an empty mapping.
///
/// Parsing runs on a helper thread with a large stack, so deeply nested input cannot overflow
/// the caller's (possibly small) stack; a panic in the parser becomes an error.
pub(crate) fn load_yaml(src: &str, file: usize, path: &str) -> Result<Node, AuditError> {
    if let Some((i, _)) = src.lines().enumerate().find(|(_, l)| {
        l.chars()
            .take_while(|c| matches!(c, ' ' | '\t' | '-' | '?' | ':'))
            .count()
            > MAX_LINE_PREFIX
    }) {
        return Err(AuditError::Invalid {
            path: path.to_string(),
            line: i as u32 + 1,
            message: "document nested too deeply".into(),
        });
    }
    std::thread::scope(|scope| {
        match std::thread::Builder::new()
            .name("yaml".into())
            .stack_size(64 << 20)
            .spawn_scoped(scope, || load_yaml_here(src, file, path))
        {
            Ok(handle) => handle.join().unwrap_or_else(|_| {
                Err(AuditError::Invalid {
                    path: path.to_string(),
                    line: 1,
                    message: "the YAML parser failed on this document".into(),
                })
            }),
            Err(_) => load_yaml_here(src, file, path),
        }
    })
}

fn load_yaml_here(src: &str, file: usize, path: &str) -> Result<Node, AuditError> {
    let docs = MarkedYamlOwned::load_from_str(src).map_err(|e| AuditError::Parse {
        path: path.to_string(),
        line: e.marker().line() as u32,
        column: e.marker().col() as u32 + 1,
        message: e.info().to_string(),
    })?;
    match docs.into_iter().next() {
        None => Ok(Node::new(Pos { file, line: 1 }, Kind::Map(Vec::new()))),
        Some(doc) => {
            let node = convert_yaml(&doc, file, path, 0)?;
            if matches!(node.kind, Kind::Null) {
                Ok(Node::new(node.pos, Kind::Map(Vec::new())))
            } else {
                Ok(node)
            }
        }
    }
}

const MAX_DEPTH: usize = 200;

fn convert_yaml(
    n: &MarkedYamlOwned,
    file: usize,
    path: &str,
    depth: usize,
) -> Result<Node, AuditError> {
    let pos = Pos {
        file,
        line: n.span.start.line().max(1) as u32,
    };
    if depth > MAX_DEPTH {
        return Err(AuditError::Invalid {
            path: path.to_string(),
            line: pos.line,
            message: "document nested too deeply".into(),
        });
    }
    let kind = match &n.data {
        YamlDataOwned::Value(s) => scalar_kind(s),
        YamlDataOwned::Representation(s, _, _) => Kind::Scalar(Scalar {
            text: s.clone(),
            raw: s.clone(),
        }),
        YamlDataOwned::Sequence(items) => Kind::Seq(
            items
                .iter()
                .map(|i| convert_yaml(i, file, path, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        YamlDataOwned::Mapping(map) => {
            let mut entries: Vec<Entry> = Vec::new();
            let mut merged: Vec<Entry> = Vec::new();
            for (k, v) in map.iter() {
                let key_pos = Pos {
                    file,
                    line: k.span.start.line().max(1) as u32,
                };
                let key = match &k.data {
                    YamlDataOwned::Value(s) => scalar_string(s),
                    YamlDataOwned::Representation(s, _, _) => s.clone(),
                    _ => {
                        return Err(AuditError::Invalid {
                            path: path.to_string(),
                            line: key_pos.line,
                            message: "mapping keys must be scalars".into(),
                        })
                    }
                };
                let value = convert_yaml(v, file, path, depth + 1)?;
                if key == "<<" {
                    // Merge key: the mappings it names supply defaults for this one.
                    let sources: Vec<&Node> = match &value.kind {
                        Kind::Map(_) => vec![&value],
                        Kind::Seq(items) => items.iter().collect(),
                        _ => Vec::new(),
                    };
                    for src in sources {
                        for e in src.entries() {
                            if !merged.iter().any(|m| m.key == e.key) {
                                merged.push(e.clone());
                            }
                        }
                    }
                    continue;
                }
                entries.push(Entry {
                    key,
                    key_pos,
                    value,
                });
            }
            for m in merged {
                if !entries.iter().any(|e| e.key == m.key) {
                    entries.push(m);
                }
            }
            Kind::Map(entries)
        }
        YamlDataOwned::Tagged(tag, inner) => {
            let mut node = convert_yaml(inner, file, path, depth + 1)?;
            node.tag = Some(tag.suffix.clone());
            return Ok(node);
        }
        YamlDataOwned::Alias(_) | YamlDataOwned::BadValue => Kind::Null,
    };
    Ok(Node::new(pos, kind))
}

fn scalar_string(s: &ScalarOwned) -> String {
    match s {
        ScalarOwned::Null => String::new(),
        ScalarOwned::Boolean(b) => b.to_string(),
        ScalarOwned::Integer(i) => i.to_string(),
        ScalarOwned::FloatingPoint(f) => f.into_inner().to_string(),
        ScalarOwned::String(s) => s.clone(),
    }
}

fn scalar_kind(s: &ScalarOwned) -> Kind {
    match s {
        ScalarOwned::Null => Kind::Null,
        other => {
            let text = scalar_string(other);
            Kind::Scalar(Scalar {
                raw: text.clone(),
                text,
            })
        }
    }
}

/// Loads a TOML document into the same tree.
pub(crate) fn load_toml(src: &str, file: usize, path: &str) -> Result<Node, AuditError> {
    let doc = toml_edit::ImDocument::parse(src).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(src, s.start)).unwrap_or((1, 1));
        AuditError::Parse {
            path: path.to_string(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })?;
    let lines = LineIndex::new(src);
    Ok(convert_table(doc.as_table(), file, &lines, 1))
}

struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(src: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }
    fn line(&self, offset: usize) -> u32 {
        match self.starts.binary_search(&offset) {
            Ok(i) => i as u32 + 1,
            Err(i) => i as u32,
        }
    }
}

fn line_col(src: &str, offset: usize) -> (u32, u32) {
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() as u32 + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
    (line, col)
}

fn convert_table(t: &toml_edit::Table, file: usize, lines: &LineIndex, line: u32) -> Node {
    let mut entries = Vec::new();
    for (k, item) in t.iter() {
        let key_line = t
            .key(k)
            .and_then(|key| key.span())
            .map_or(line, |s| lines.line(s.start));
        let value = convert_item(item, file, lines, key_line);
        entries.push(Entry {
            key: k.to_string(),
            key_pos: Pos {
                file,
                line: key_line,
            },
            value,
        });
    }
    let line = t.span().map_or(line, |s| lines.line(s.start));
    Node::new(Pos { file, line }, Kind::Map(entries))
}

fn convert_item(item: &toml_edit::Item, file: usize, lines: &LineIndex, line: u32) -> Node {
    let line = item.span().map_or(line, |s| lines.line(s.start));
    let pos = Pos { file, line };
    match item {
        toml_edit::Item::None => Node::new(pos, Kind::Null),
        toml_edit::Item::Value(v) => convert_value(v, file, lines, line),
        toml_edit::Item::Table(t) => convert_table(t, file, lines, line),
        toml_edit::Item::ArrayOfTables(a) => Node::new(
            pos,
            Kind::Seq(
                a.iter()
                    .map(|t| convert_table(t, file, lines, line))
                    .collect(),
            ),
        ),
    }
}

fn convert_value(v: &toml_edit::Value, file: usize, lines: &LineIndex, line: u32) -> Node {
    let line = v.span().map_or(line, |s| lines.line(s.start));
    let pos = Pos { file, line };
    use toml_edit::Value as V;
    match v {
        V::String(s) => Node::scalar(pos, s.value().clone()),
        V::Integer(i) => Node::scalar(pos, i.value().to_string()),
        V::Float(f) => Node::scalar(pos, f.value().to_string()),
        V::Boolean(b) => Node::scalar(pos, b.value().to_string()),
        V::Datetime(d) => Node::scalar(pos, d.value().to_string()),
        V::Array(a) => Node::new(
            pos,
            Kind::Seq(
                a.iter()
                    .map(|x| convert_value(x, file, lines, line))
                    .collect(),
            ),
        ),
        V::InlineTable(t) => {
            let mut entries = Vec::new();
            for (k, x) in t.iter() {
                let key_line = t
                    .key(k)
                    .and_then(|key| key.span())
                    .map_or(line, |s| lines.line(s.start));
                entries.push(Entry {
                    key: k.to_string(),
                    key_pos: Pos {
                        file,
                        line: key_line,
                    },
                    value: convert_value(x, file, lines, key_line),
                });
            }
            Node::new(pos, Kind::Map(entries))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_lines_and_merge_keys() {
        let src = "x-base: &b\n  a: 1\n  b: 2\nsvc:\n  <<: *b\n  b: 3\n";
        let n = load_yaml(src, 0, "f.yml").expect("parses");
        let svc = n.get("svc").expect("svc");
        assert_eq!(svc.get("a").and_then(Node::text), Some("1"));
        assert_eq!(svc.get("b").and_then(Node::text), Some("3"));
        assert_eq!(n.entry("svc").map(|e| e.key_pos.line), Some(4));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        for src in [
            "- ".repeat(5000) + "1",
            "- ".repeat(499) + "1",
            (0..999)
                .map(|i| format!("{}a:", " ".repeat(i)))
                .collect::<Vec<_>>()
                .join("\n")
                + " 1",
            (0..3000)
                .map(|i| format!("{}a:", " ".repeat(i)))
                .collect::<Vec<_>>()
                .join("\n")
                + " 1",
            "[".repeat(20000),
        ] {
            let err = load_yaml(&src, 0, "deep.yml").expect_err("too deep");
            assert!(err.to_string().contains("deep.yml"), "{err}");
        }
    }

    #[test]
    fn yaml_error_has_line() {
        let err = load_yaml("a: 1\nb: [\n", 0, "f.yml").expect_err("bad yaml");
        assert!(err.to_string().contains("f.yml:"), "{err}");
    }

    #[test]
    fn toml_lines() {
        let src = "[api]\ninsecure = true\n\n[entryPoints.web]\naddress = \":80\"\n";
        let n = load_toml(src, 0, "t.toml").expect("parses");
        let web = n
            .get("entryPoints")
            .and_then(|e| e.get("web"))
            .expect("web");
        assert_eq!(web.get("address").map(|a| a.pos.line), Some(5));
        assert_eq!(
            n.get("api")
                .and_then(|a| a.get("insecure"))
                .map(|a| a.pos.line),
            Some(2)
        );
    }
}
