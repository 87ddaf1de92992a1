//! The fast path for Trivy reports: read the input in large blocks, parse every
//! `Results[].Vulnerabilities[]` entry straight from the block (serde_json's slice reader,
//! strings borrowed from the block), and keep everything else as a small "skeleton" document.
//!
//! The skeleton is the report with each `Vulnerabilities` array replaced by its index
//! (`"Vulnerabilities": 0`); it is parsed by the very same `RawReport` deserializer as the slow
//! path, which picks up the findings of array `n` when it meets the integer `n` (see
//! [`Spliced`]). Memory holds one block plus the findings, never the whole report.
//!
//! The fast path either yields exactly what the slow path (`serde_json::from_reader` over the
//! whole report) would, or gives up: on anything unexpected (invalid JSON, I/O errors, shapes
//! it does not recognise) the caller runs the slow path, which produces the error message.
//! Giving up is always safe; the splitting below only has to be right for valid JSON:
//!
//! - the scanner tracks strings (with escapes) and nesting outside the vulnerability arrays;
//!   a raw newline or any other byte cannot end a string early, and brackets inside strings
//!   are ignored;
//! - each vulnerability is one complete JSON object parsed by serde_json itself (so it is
//!   fully validated), and the separators between them are checked here (`ws , ws`, no
//!   trailing comma);
//! - the skeleton, which holds everything else verbatim, is validated by serde_json.
//!
//! If the skeleton, every element and every separator are valid, the original report is valid
//! JSON with the same meaning.

use std::cell::RefCell;
use std::io::Read;

use super::{vuln_finding, RawReport, RawVuln};
use crate::finding::Finding;

/// Bytes read per block.
pub(super) const BLOCK: usize = 4 << 20;

/// A vulnerability that does not parse although this much input follows its start is invalid
/// (or absurdly large): give up rather than read further.
const ELEMENT_WINDOW: usize = 1 << 20;

/// Deeper nesting than this outside the vulnerability arrays: give up (serde_json's own
/// recursion limit is 128; the slow path reports it).
const MAX_DEPTH: usize = 100;

thread_local! {
    static SPLICED: RefCell<Option<Vec<Option<Vec<Finding>>>>> = const { RefCell::new(None) };
}

/// Access to the findings of the vulnerability arrays cut out of the skeleton, while the
/// skeleton is being parsed on this thread.
pub(super) struct Spliced;

impl Spliced {
    /// The findings of cut-out array `n`, once. `Err(())` when no skeleton is being parsed (the
    /// slow path: an integer is then the usual "invalid type" error) or `n` is unknown or was
    /// already taken.
    pub(super) fn take(n: u64) -> Result<Vec<Finding>, ()> {
        SPLICED.with_borrow_mut(|s| {
            let arrays = s.as_mut().ok_or(())?;
            let slot = usize::try_from(n)
                .ok()
                .and_then(|n| arrays.get_mut(n))
                .ok_or(())?;
            slot.take().ok_or(())
        })
    }
}

/// Installs the cut-out arrays for the duration of a skeleton parse; removes them on drop.
struct Install;

impl Install {
    fn new(arrays: Vec<Vec<Finding>>) -> Install {
        SPLICED.with_borrow_mut(|s| *s = Some(arrays.into_iter().map(Some).collect()));
        Install
    }

    /// Whether every cut-out array was taken exactly once.
    fn all_taken(&self) -> bool {
        SPLICED.with_borrow(|s| s.as_ref().is_some_and(|a| a.iter().all(Option::is_none)))
    }
}

impl Drop for Install {
    fn drop(&mut self) {
        SPLICED.with_borrow_mut(|s| *s = None);
    }
}

/// Where a container sits in the report (only the path to `Vulnerabilities` matters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The top-level object.
    Root,
    /// The `Results` array of the top-level object.
    Results,
    /// An object directly in `Results`.
    Result,
    /// Anything else.
    Other,
}

/// The last tokens seen, as far as they matter for recognising `"Results": [` and
/// `"Vulnerabilities": [`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    ResultsKey,
    VulnsKey,
    ResultsColon,
    VulnsColon,
}

/// The longest key the scanner needs to recognise (`Vulnerabilities`).
const KEY_MAX: usize = 16;

/// Resumable scanner state outside the vulnerability arrays.
struct Outer {
    stack: Vec<Role>,
    started: bool,
    in_str: bool,
    escaped: bool,
    key: [u8; KEY_MAX],
    /// Length of the current string while it may still be a key of interest; `KEY_MAX + 1`
    /// once it cannot.
    key_len: usize,
    pending: Pending,
}

/// What the outer scanner stopped at.
enum Stop {
    /// The end of the buffered data.
    End,
    /// A `Vulnerabilities` array opens at this offset (the `[`).
    Vulns(usize),
    /// Something the fast path does not handle.
    GiveUp,
}

impl Outer {
    fn new() -> Outer {
        Outer {
            stack: Vec::new(),
            started: false,
            in_str: false,
            escaped: false,
            key: [0; KEY_MAX],
            key_len: 0,
            pending: Pending::None,
        }
    }

    /// Scans `buf[from..]` until the end of the data or the `[` of a vulnerability array.
    fn scan(&mut self, buf: &[u8], from: usize) -> Stop {
        let mut i = from;
        while i < buf.len() {
            let b = buf[i];
            if self.in_str {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                    self.key_len = KEY_MAX + 1;
                } else if b == b'"' {
                    self.in_str = false;
                    self.pending = match self.key.get(..self.key_len) {
                        Some(b"Results") => Pending::ResultsKey,
                        Some(b"Vulnerabilities") => Pending::VulnsKey,
                        _ => Pending::None,
                    };
                } else if self.key_len < KEY_MAX {
                    self.key[self.key_len] = b;
                    self.key_len += 1;
                } else {
                    self.key_len = KEY_MAX + 1;
                }
                i += 1;
                continue;
            }
            match b {
                b' ' | b'\n' | b'\r' | b'\t' => {}
                b'"' => {
                    self.in_str = true;
                    self.key_len = 0;
                }
                b':' => {
                    self.pending = match self.pending {
                        Pending::ResultsKey => Pending::ResultsColon,
                        Pending::VulnsKey => Pending::VulnsColon,
                        _ => Pending::None,
                    };
                }
                b'{' | b'[' => {
                    let top = self.stack.last().copied();
                    let role = match (b, top, self.pending) {
                        (b'[', Some(Role::Result), Pending::VulnsColon) => {
                            self.pending = Pending::None;
                            return Stop::Vulns(i);
                        }
                        (b'{', None, _) if !self.started => Role::Root,
                        (b'[', Some(Role::Root), Pending::ResultsColon) => Role::Results,
                        (b'{', Some(Role::Results), _) => Role::Result,
                        _ => Role::Other,
                    };
                    self.started = true;
                    if self.stack.len() >= MAX_DEPTH {
                        return Stop::GiveUp;
                    }
                    self.stack.push(role);
                    self.pending = Pending::None;
                }
                b'}' | b']' => {
                    if self.stack.pop().is_none() {
                        return Stop::GiveUp;
                    }
                    self.pending = Pending::None;
                }
                _ => {
                    self.started = true;
                    self.pending = Pending::None;
                }
            }
            i += 1;
        }
        Stop::End
    }
}

/// The input, a block at a time: `buf[pos..]` is what has not been consumed yet.
struct Blocks<R> {
    src: R,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    block: usize,
}

impl<R: Read> Blocks<R> {
    /// Drops the consumed part and appends up to `want` more bytes. Returns how many bytes
    /// were added (0 at the end of the input).
    fn refill(&mut self, want: usize) -> std::io::Result<usize> {
        if self.eof {
            return Ok(0);
        }
        self.buf.drain(..self.pos);
        self.pos = 0;
        self.buf.reserve(want);
        let n = (&mut self.src)
            .take(want as u64)
            .read_to_end(&mut self.buf)?;
        if n == 0 {
            self.eof = true;
        }
        Ok(n)
    }

    /// The next byte that is not JSON whitespace, refilling as needed; `None` at the end.
    fn next_non_ws(&mut self) -> std::io::Result<Option<u8>> {
        loop {
            while let Some(&b) = self.buf.get(self.pos) {
                if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                    self.pos += 1;
                } else {
                    return Ok(Some(b));
                }
            }
            if self.refill(self.block)? == 0 {
                return Ok(None);
            }
        }
    }
}

/// Parses a Trivy report from `src` on the fast path. `None`: give up, run the slow path.
pub(super) fn parse<R: Read>(src: R, block: usize) -> Option<RawReport> {
    let mut input = Blocks {
        src,
        buf: Vec::new(),
        pos: 0,
        eof: false,
        block: block.max(1),
    };
    let mut outer = Outer::new();
    let mut skeleton: Vec<u8> = Vec::new();
    let mut arrays: Vec<Vec<Finding>> = Vec::new();
    loop {
        match outer.scan(&input.buf, input.pos) {
            Stop::GiveUp => return None,
            Stop::End => {
                skeleton.extend_from_slice(&input.buf[input.pos..]);
                input.pos = input.buf.len();
                if input.refill(input.block).ok()? == 0 {
                    break;
                }
            }
            Stop::Vulns(at) => {
                skeleton.extend_from_slice(&input.buf[input.pos..at]);
                skeleton.extend_from_slice(arrays.len().to_string().as_bytes());
                input.pos = at + 1;
                arrays.push(vulnerabilities(&mut input)?);
            }
        }
    }
    let installed = Install::new(arrays);
    let report: RawReport = serde_json::from_slice(&skeleton).ok()?;
    installed.all_taken().then_some(report)
}

/// Reads the elements of a vulnerability array whose `[` was just consumed, through its `]`.
fn vulnerabilities<R: Read>(input: &mut Blocks<R>) -> Option<Vec<Finding>> {
    let mut out = Vec::new();
    match input.next_non_ws().ok()?? {
        b']' => {
            input.pos += 1;
            return Some(out);
        }
        b'{' => {}
        _ => return None,
    }
    loop {
        out.push(element(input)?);
        match input.next_non_ws().ok()?? {
            b']' => {
                input.pos += 1;
                return Some(out);
            }
            b',' => input.pos += 1,
            _ => return None,
        }
        // No trailing comma: another object must follow.
        if input.next_non_ws().ok()?? != b'{' {
            return None;
        }
    }
}

/// Parses the object at `input.pos` into a finding.
fn element<R: Read>(input: &mut Blocks<R>) -> Option<Finding> {
    loop {
        let rest = &input.buf[input.pos..];
        let mut stream = serde_json::Deserializer::from_slice(rest).into_iter::<RawVuln>();
        match stream.next() {
            Some(Ok(v)) => {
                let used = stream.byte_offset();
                let f = vuln_finding(v);
                input.pos += used;
                return Some(f);
            }
            // Cut off by the end of the block: read more (at least as much again) and parse
            // it again. With a full window after its start, a failure is real.
            _ if !input.eof && rest.len() < input.block.max(ELEMENT_WINDOW) => {
                let want = input.block.max(rest.len());
                input.refill(want).ok()?;
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::report::ScannerRun;

    /// The reference: the whole report through serde_json, as the slow path reads it.
    fn slow(bytes: &[u8]) -> Option<Result<ScannerRun, String>> {
        let report: RawReport = serde_json::from_slice(bytes).ok()?;
        Some(super::super::finish(report, "x").map_err(|e| e.to_string()))
    }

    fn fast(bytes: &[u8], block: usize) -> Option<Result<ScannerRun, String>> {
        let report = parse(bytes, block)?;
        Some(super::super::finish(report, "x").map_err(|e| e.to_string()))
    }

    fn same(a: &Result<ScannerRun, String>, b: &Result<ScannerRun, String>) -> bool {
        match (a, b) {
            (Ok(a), Ok(b)) => a.status == b.status && a.findings == b.findings,
            (Err(a), Err(b)) => a == b,
            _ => false,
        }
    }

    /// Whenever the fast path answers, the slow path answers the same.
    fn check(bytes: &[u8], block: usize, label: &str) {
        if let Some(f) = fast(bytes, block) {
            let s = slow(bytes)
                .unwrap_or_else(|| panic!("{label}: fast path accepted what serde_json rejects"));
            assert!(same(&f, &s), "{label}: fast and slow paths differ");
        }
    }

    fn reports() -> Vec<PathBuf> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut out = Vec::new();
        for dir in [
            root.join("../../fixtures/scanners/reports/trivy"),
            root.join("../../../shared/corpora/trivy"),
        ] {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name != "expected.json" && (name.ends_with(".json") || name.ends_with(".golden"))
                {
                    out.push(p);
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn fast_path_matches_serde_json_on_every_report_and_block_size() {
        let files = reports();
        assert!(files.len() >= 3, "{files:?}");
        for p in files {
            let bytes = std::fs::read(&p).expect("read");
            let reference = slow(&bytes);
            for block in [1, 2, 3, 7, 64, 1000, BLOCK] {
                let label = format!("{} (block {block})", p.display());
                match (&reference, fast(&bytes, block)) {
                    (Some(s), Some(f)) => assert!(same(s, &f), "{label}: differ"),
                    (None, None) => {}
                    // Valid reports must take the fast path.
                    (Some(_), None) => panic!("{label}: fast path gave up"),
                    (None, Some(_)) => panic!("{label}: fast path accepted an invalid report"),
                }
            }
        }
    }

    #[test]
    fn fast_path_never_accepts_what_serde_json_rejects() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/scanners/reports/trivy/image-mixed.json");
        let bytes = std::fs::read(p).expect("read");
        for cut in 0..bytes.len() {
            check(&bytes[..cut], 64, &format!("prefix of {cut} bytes"));
        }
        for i in 0..bytes.len() {
            for c in *b"\"{}[],: \\x0-\n" {
                if bytes[i] == c {
                    continue;
                }
                let mut m = bytes.clone();
                m[i] = c;
                check(&m, 64, &format!("byte {i} set to {:?}", c as char));
            }
        }
    }

    #[test]
    fn odd_but_valid_shapes() {
        let docs = [
            // Vulnerabilities twice, an escaped key, null, empty, nested decoys.
            r#"{"SchemaVersion":2,"Results":[{"Target":"t","Vulnerabilities":[{"VulnerabilityID":"CVE-1","Severity":"HIGH"}],"Vulnerabilities":[ ],"Vulnerabilit\u0069es":[{"VulnerabilityID":"CVE-2"}]}]}"#,
            r#"{"SchemaVersion":2,"Results":[{"Vulnerabilities":null},{"Class":"lang-pkgs","Target":"p","Vulnerabilities":[{"VulnerabilityID":"CVE-3","Title":"a \"[quoted]\" {title}\\","CVSS":{"nvd":{"V3Score":5},"nvd":{"V2Score":1}}} , {"VulnerabilityID":"CVE-4"}]}]}"#,
            r#"{"Metadata":{"Results":[{"Vulnerabilities":[1]}]},"Results":[{"Target":"Vulnerabilities","Misconfigurations":[{"ID":"DS002","Status":"FAIL","Title":"Vulnerabilities"}]}],"SchemaVersion":2}"#,
            r#"  {"SchemaVersion":2,"Results":[]}  "#,
            r#"{"SchemaVersion":3,"Results":[{"Vulnerabilities":[{"VulnerabilityID":"CVE-5"}]}]}"#,
            // Invalid: trailing comma, missing comma, bad element, trailing garbage.
            r#"{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"VulnerabilityID":"CVE-1"},]}]}"#,
            r#"{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"VulnerabilityID":"CVE-1"} {"VulnerabilityID":"CVE-2"}]}]}"#,
            r#"{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"VulnerabilityID":1}]}]}"#,
            r#"{"SchemaVersion":2,"Results":[{"Vulnerabilities":[]}]} x"#,
            r#"{"SchemaVersion":2,"Results":[{"Vulnerabilities":0}]}"#,
        ];
        for (n, d) in docs.iter().enumerate() {
            for block in [1, 5, 4096] {
                let label = format!("doc {n} (block {block})");
                check(d.as_bytes(), block, &label);
                assert_eq!(
                    fast(d.as_bytes(), block).is_some(),
                    slow(d.as_bytes()).is_some(),
                    "{label}"
                );
            }
        }
    }
}
