//! Compose variable interpolation (`$V`, `${V}`, `${V:-d}`, `${V-d}`, `${V:?e}`, `${V?e}`,
//! `${V:+a}`, `${V+a}`, `$$`) and `.env` file reading, as Docker Compose does them.

use std::collections::BTreeMap;

/// One variable reference found while interpolating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VarRef {
    /// Variable name.
    pub name: String,
    /// The default text written after `:-` or `-`, when there is one.
    pub default: Option<String>,
}

/// The result of interpolating one string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Interpolated {
    pub text: String,
    pub refs: Vec<VarRef>,
    /// Variables used without a value or default (Compose substitutes an empty string).
    pub unset: Vec<String>,
}

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InterpError {
    /// `${V:?message}` or `${V?message}` with V unset (or empty for `:?`).
    Required { name: String, message: String },
    /// Malformed `${...}`.
    Syntax(String),
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Interpolates `s` with `vars`.
pub(crate) fn interpolate(
    s: &str,
    vars: &BTreeMap<String, String>,
) -> Result<Interpolated, InterpError> {
    let mut out = Interpolated::default();
    let chars: Vec<char> = s.chars().collect();
    let text = expand(&chars, vars, &mut out, 0)?;
    out.text = text;
    Ok(out)
}

fn expand(
    chars: &[char],
    vars: &BTreeMap<String, String>,
    out: &mut Interpolated,
    depth: usize,
) -> Result<String, InterpError> {
    if depth > 16 {
        return Err(InterpError::Syntax(
            "interpolation nested too deeply".into(),
        ));
    }
    let mut res = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            res.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                res.push('$');
                i += 2;
            }
            Some('{') => {
                // Find the matching close brace, honouring nested `${`.
                let start = i + 2;
                let mut level = 1;
                let mut j = start;
                while j < chars.len() {
                    if chars[j] == '$' && chars.get(j + 1) == Some(&'{') {
                        level += 1;
                        j += 2;
                        continue;
                    }
                    if chars[j] == '}' {
                        level -= 1;
                        if level == 0 {
                            break;
                        }
                    }
                    j += 1;
                }
                if j >= chars.len() {
                    return Err(InterpError::Syntax(format!(
                        "unterminated `${{` in \"{}\"",
                        chars.iter().collect::<String>()
                    )));
                }
                let body = &chars[start..j];
                res.push_str(&expand_braced(body, vars, out, depth)?);
                i = j + 1;
            }
            Some(&n) if is_name_start(n) => {
                let mut j = i + 1;
                while j < chars.len() && is_name_char(chars[j]) {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                out.refs.push(VarRef {
                    name: name.clone(),
                    default: None,
                });
                match vars.get(&name) {
                    Some(v) => res.push_str(v),
                    None => out.unset.push(name),
                }
                i = j;
            }
            _ => {
                res.push('$');
                i += 1;
            }
        }
    }
    Ok(res)
}

fn expand_braced(
    body: &[char],
    vars: &BTreeMap<String, String>,
    out: &mut Interpolated,
    depth: usize,
) -> Result<String, InterpError> {
    let mut j = 0;
    while j < body.len() && is_name_char(body[j]) {
        j += 1;
    }
    let name: String = body[..j].iter().collect();
    if name.is_empty() || !body.first().copied().is_some_and(is_name_start) {
        return Err(InterpError::Syntax(format!(
            "invalid variable name in \"${{{}}}\"",
            body.iter().collect::<String>()
        )));
    }
    let rest = &body[j..];
    let value = vars.get(&name);
    if rest.is_empty() {
        out.refs.push(VarRef {
            name: name.clone(),
            default: None,
        });
        return Ok(match value {
            Some(v) => v.clone(),
            None => {
                out.unset.push(name);
                String::new()
            }
        });
    }
    let (op, arg): (String, &[char]) = if rest[0] == ':' && rest.len() >= 2 {
        (rest[..2].iter().collect(), &rest[2..])
    } else {
        (rest[..1].iter().collect(), &rest[1..])
    };
    let raw_arg: String = arg.iter().collect();
    let set = value.is_some();
    let non_empty = value.is_some_and(|v| !v.is_empty());
    match op.as_str() {
        ":-" | "-" => {
            out.refs.push(VarRef {
                name: name.clone(),
                default: Some(raw_arg),
            });
            let use_default = if op == ":-" { !non_empty } else { !set };
            if use_default {
                expand(arg, vars, out, depth + 1)
            } else {
                Ok(value.cloned().unwrap_or_default())
            }
        }
        ":?" | "?" => {
            out.refs.push(VarRef {
                name: name.clone(),
                default: None,
            });
            let missing = if op == ":?" { !non_empty } else { !set };
            if missing {
                let message = expand(arg, vars, out, depth + 1)?;
                Err(InterpError::Required { name, message })
            } else {
                Ok(value.cloned().unwrap_or_default())
            }
        }
        ":+" | "+" => {
            out.refs.push(VarRef {
                name: name.clone(),
                default: None,
            });
            let use_alt = if op == ":+" { non_empty } else { set };
            if use_alt {
                expand(arg, vars, out, depth + 1)
            } else {
                Ok(String::new())
            }
        }
        _ => Err(InterpError::Syntax(format!(
            "invalid interpolation \"${{{}}}\"",
            body.iter().collect::<String>()
        ))),
    }
}

/// A `.env` file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DotenvError {
    pub line: u32,
    pub message: String,
}

/// Parses a `.env` file as Compose does; later values may refer to earlier ones and to `base`.
pub(crate) fn parse_dotenv(
    src: &str,
    base: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, DotenvError> {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let lines: Vec<&str> = src.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let lineno = i as u32 + 1;
        let line = lines[i].trim_start();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| is_name_char(c) || c == '.' || c == '-') {
            return Err(DotenvError {
                line: lineno,
                message: format!("invalid variable name `{key}`"),
            });
        }
        let value = value.trim_start();
        let mut lookup = base.clone();
        lookup.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        let parsed = if let Some(rest) = value.strip_prefix('\'') {
            let mut acc = rest.to_string();
            loop {
                if let Some(end) = acc.find('\'') {
                    acc.truncate(end);
                    break acc;
                }
                match lines.get(i) {
                    Some(next) => {
                        acc.push('\n');
                        acc.push_str(next);
                        i += 1;
                    }
                    None => {
                        return Err(DotenvError {
                            line: lineno,
                            message: "unterminated single quote".into(),
                        })
                    }
                }
            }
        } else if let Some(rest) = value.strip_prefix('"') {
            let mut acc = rest.to_string();
            let body = loop {
                if let Some(end) = find_unescaped_quote(&acc) {
                    acc.truncate(end);
                    break acc;
                }
                match lines.get(i) {
                    Some(next) => {
                        acc.push('\n');
                        acc.push_str(next);
                        i += 1;
                    }
                    None => {
                        return Err(DotenvError {
                            line: lineno,
                            message: "unterminated double quote".into(),
                        })
                    }
                }
            };
            let unescaped = body
                .replace("\\n", "\n")
                .replace("\\t", "\t")
                .replace("\\\"", "\"")
                .replace("\\\\", "\\");
            interp_dotenv(&unescaped, &lookup, lineno)?
        } else {
            let v = match value.find(" #") {
                Some(p) => &value[..p],
                None => value,
            };
            interp_dotenv(v.trim(), &lookup, lineno)?
        };
        vars.insert(key.to_string(), parsed);
    }
    Ok(vars)
}

fn find_unescaped_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn interp_dotenv(
    s: &str,
    vars: &BTreeMap<String, String>,
    line: u32,
) -> Result<String, DotenvError> {
    interpolate(s, vars)
        .map(|i| i.text)
        .map_err(|e| DotenvError {
            line,
            message: match e {
                InterpError::Required { name, message } => {
                    format!("required variable {name} is missing a value: {message}")
                }
                InterpError::Syntax(m) => m,
            },
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("A", "a"), ("EMPTY", "")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ok(s: &str) -> String {
        interpolate(s, &vars()).expect("interpolates").text
    }

    #[test]
    fn forms() {
        assert_eq!(ok("x${A}y"), "xay");
        assert_eq!(ok("$A-$B."), "a-.");
        assert_eq!(ok("${B:-d}"), "d");
        assert_eq!(ok("${EMPTY:-d}"), "d");
        assert_eq!(ok("${EMPTY-d}"), "");
        assert_eq!(ok("${B-d}"), "d");
        assert_eq!(ok("${A:+alt}"), "alt");
        assert_eq!(ok("${B:+alt}"), "");
        assert_eq!(ok("$$A"), "$A");
        assert_eq!(ok("${B:-${A}x}"), "ax");
        assert_eq!(ok("cost $5"), "cost $5");
    }

    #[test]
    fn required() {
        let e = interpolate("${B:?set B}", &vars()).expect_err("required");
        assert_eq!(
            e,
            InterpError::Required {
                name: "B".into(),
                message: "set B".into()
            }
        );
        assert!(interpolate("${EMPTY?x}", &vars()).is_ok());
        assert!(interpolate("${EMPTY:?x}", &vars()).is_err());
        assert!(matches!(
            interpolate("${A", &vars()),
            Err(InterpError::Syntax(_))
        ));
    }

    #[test]
    fn defaults_are_recorded() {
        let i = interpolate("${PW:-changeme}", &vars()).expect("ok");
        assert_eq!(i.refs[0].default.as_deref(), Some("changeme"));
    }

    #[test]
    fn dotenv() {
        let src = "# c\nexport A=1\nB=\"x\\ny\"\nC='$A'\nD=${A}2 # comment\nE=\"multi\nline\"\n";
        let v = parse_dotenv(src, &BTreeMap::new()).expect("parses");
        assert_eq!(v["A"], "1");
        assert_eq!(v["B"], "x\ny");
        assert_eq!(v["C"], "$A");
        assert_eq!(v["D"], "12");
        assert_eq!(v["E"], "multi\nline");
        let e = parse_dotenv("A=\"open\n", &BTreeMap::new()).expect_err("bad");
        assert_eq!(e.line, 1);
    }
}
