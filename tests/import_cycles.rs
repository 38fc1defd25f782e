#![allow(clippy::unwrap_used, clippy::panic)]
//! No file-level import cycles under `src/` (issue 9, "the house").
//!
//! Every source file is a node; file A depends on file B when A names a path into B: a
//! `use crate::…`, `use super::…` or `use self::…` (brace groups expanded), or such a path in
//! code (`crate::x::y(…)`, `super::z::W`, `$crate::…` in macros). A path maps to the file of its
//! longest prefix that is a module with a file of its own (an inline `mod x { … }` belongs to its
//! file). The check fails, listing each cycle with one line per edge, when the graph has a
//! strongly connected component of more than one file.
//!
//! What it leaves out, on purpose:
//! - test-only code: files declared by `#[cfg(test)] mod x;` (and every file below them), files
//!   starting with `#![cfg(test)]`, and any item under `#[cfg(test)]` in other files (an inline
//!   `mod tests { … }`, a `use`). A test may reach anywhere; production files may not loop.
//! - comments (doc links included) and string literals.
//! - paths that start with a bare name (`use tx::Tx;` in `mod.rs`, `tx::abort(…)`): a parent
//!   re-exporting its children is the usual facade, not a cycle between them. A parent naming
//!   a child through `self::`/`crate::`, though, counts.
//!
//! There is no allow-list: a new cycle is a failure.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One source file, reached from a crate root through `mod` declarations.
struct SourceFile {
    /// Module path, crate root first (`lib`, `bin` for `main.rs`), e.g. `lib::store::tx`.
    module: Vec<String>,
    /// Whether only test builds compile it.
    test_only: bool,
    /// The file's text.
    text: String,
}

/// A `mod name;` declaration found in a file.
struct ModDecl {
    /// Names of the enclosing inline modules, then `name`.
    path: Vec<String>,
    test_only: bool,
}

/// A path found in a file, and the line it is on.
struct FoundPath {
    /// `crate`, `super` or `self`, then the names after it (`super` may repeat).
    segments: Vec<String>,
    /// Names of the inline modules the path sits in.
    inline: Vec<String>,
    line: usize,
}

/// A token of Rust source, comments and literals dropped.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Path,
    Punct(char),
}

/// Tokens of `text` with their line numbers: identifiers, `::` and single punctuation;
/// comments, strings, byte strings, raw strings and char literals are skipped.
fn tokenize(text: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' || (ch == 'b' && at(i + 1) == '"') {
            i += if ch == 'b' { 2 } else { 1 };
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                if at(i) == '\n' {
                    line += 1;
                }
                i += 1;
            }
            i += 1;
        } else if (ch == 'r'
            && (at(i + 1) == '"' || (at(i + 1) == '#' && matches!(at(i + 2), '"' | '#'))))
            || (ch == 'b' && at(i + 1) == 'r' && matches!(at(i + 2), '"' | '#'))
        {
            i += if ch == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while at(i) == '#' {
                hashes += 1;
                i += 1;
            }
            i += 1; // the opening quote
            loop {
                if i >= c.len() {
                    break;
                }
                if c[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#') {
                    i += 1 + hashes;
                    break;
                }
                if c[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
        } else if ch == '\'' || (ch == 'b' && at(i + 1) == '\'') {
            let start = if ch == 'b' { i + 1 } else { i };
            if at(start + 1) == '\\' {
                // An escaped char literal (`'\''`, `'\u{…}'`): up to the closing quote.
                i = start + 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(start + 2) == '\'' {
                i = start + 3; // 'x'
            } else {
                // A lifetime or label: the quote alone.
                out.push((Tok::Punct('\''), line));
                i = start + 1;
            }
        } else if ch.is_alphanumeric() || ch == '_' {
            let s = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(c[s..i].iter().collect()), line));
        } else if ch == ':' && at(i + 1) == ':' {
            out.push((Tok::Path, line));
            i += 2;
        } else {
            out.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

fn is_ident(t: Option<&(Tok, usize)>, name: &str) -> bool {
    matches!(t, Some((Tok::Ident(s), _)) if s == name)
}

fn is_punct(t: Option<&(Tok, usize)>, p: char) -> bool {
    matches!(t, Some((Tok::Punct(c), _)) if *c == p)
}

/// Index just past the item starting at `i`: its closing `}` or its `;`, whichever ends it at
/// nesting level 0.
fn item_end(toks: &[(Tok, usize)], mut i: usize) -> usize {
    let mut depth = 0i32;
    while i < toks.len() {
        match &toks[i].0 {
            Tok::Punct('{' | '(' | '[') => depth += 1,
            Tok::Punct('}' | ')' | ']') => {
                depth -= 1;
                if depth == 0 && toks[i].0 == Tok::Punct('}') {
                    return i + 1;
                }
            }
            Tok::Punct(';') if depth == 0 => return i + 1,
            _ => {}
        }
        i += 1;
    }
    i
}

/// Index just past the attribute `#[…]` or `#![…]` starting at `i`.
fn attr_end(toks: &[(Tok, usize)], i: usize) -> usize {
    let open = if is_punct(toks.get(i + 1), '!') {
        i + 2
    } else {
        i + 1
    };
    let mut depth = 0;
    let mut j = open;
    while j < toks.len() {
        match toks[j].0 {
            Tok::Punct('[') => depth += 1,
            Tok::Punct(']') => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    j
}

/// Whether the attribute at `i` is exactly `#[cfg(test)]` (or `#![cfg(test)]`).
fn is_cfg_test(toks: &[(Tok, usize)], i: usize) -> bool {
    let start = if is_punct(toks.get(i + 1), '!') {
        i + 2
    } else {
        i + 1
    };
    let want = [
        Tok::Punct('['),
        Tok::Ident("cfg".into()),
        Tok::Punct('('),
        Tok::Ident("test".into()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    want.iter()
        .enumerate()
        .all(|(k, w)| toks.get(start + k).is_some_and(|(t, _)| t == w))
}

/// The path tree at `i` (after a `::`, or the start of a `use` group element): its expanded
/// paths, appended to `prefix`, and the index past it.
fn path_tree(
    toks: &[(Tok, usize)],
    mut i: usize,
    prefix: &[String],
    out: &mut Vec<Vec<String>>,
) -> usize {
    let mut path = prefix.to_vec();
    loop {
        match toks.get(i) {
            Some((Tok::Ident(name), _)) if name != "as" => {
                path.push(name.clone());
                i += 1;
                if toks.get(i).map(|t| &t.0) == Some(&Tok::Path) {
                    i += 1;
                    continue;
                }
                out.push(path);
                return i;
            }
            Some((Tok::Punct('{'), _)) => {
                i += 1;
                loop {
                    if is_punct(toks.get(i), '}') {
                        return i + 1;
                    }
                    if i >= toks.len() {
                        return i;
                    }
                    i = path_tree(toks, i, &path, out);
                    // Skip `as name`, then a comma.
                    while i < toks.len()
                        && !is_punct(toks.get(i), ',')
                        && !is_punct(toks.get(i), '}')
                    {
                        i += 1;
                    }
                    if is_punct(toks.get(i), ',') {
                        i += 1;
                    }
                }
            }
            // `*`, or something that ends the path.
            _ => {
                out.push(path);
                return i;
            }
        }
    }
}

/// What a file names: the paths starting with `crate`, `super` or `self`, and its `mod x;`
/// declarations, leaving out everything under `#[cfg(test)]`.
fn scan(text: &str) -> (Vec<FoundPath>, Vec<ModDecl>, bool) {
    let toks = tokenize(text);
    let mut paths = Vec::new();
    let mut mods = Vec::new();
    let mut file_test_only = false;
    // Inline modules we are in: (name, brace depth inside it).
    let mut inline: Vec<(String, i32)> = Vec::new();
    let mut depth = 0i32;
    let mut pending_test = false;
    let mut i = 0;
    while i < toks.len() {
        let (tok, line) = &toks[i];
        match tok {
            Tok::Punct('#') if is_punct(toks.get(i + 1), '[') || is_punct(toks.get(i + 1), '!') => {
                let inner = is_punct(toks.get(i + 1), '!');
                if is_cfg_test(&toks, i) {
                    if inner && depth == 0 {
                        file_test_only = true;
                    } else {
                        pending_test = true;
                    }
                }
                i = attr_end(&toks, i);
                continue;
            }
            _ if pending_test => {
                pending_test = false;
                // A `#[cfg(test)] mod x;` declares a test-only file; any other item is skipped.
                let mut j = i;
                if is_ident(toks.get(j), "pub") {
                    j += 1;
                    if is_punct(toks.get(j), '(') {
                        while j < toks.len() && !is_punct(toks.get(j), ')') {
                            j += 1;
                        }
                        j += 1;
                    }
                }
                if is_ident(toks.get(j), "mod") && is_punct(toks.get(j + 2), ';') {
                    if let Some((Tok::Ident(name), _)) = toks.get(j + 1) {
                        let mut path: Vec<String> = inline.iter().map(|(n, _)| n.clone()).collect();
                        path.push(name.clone());
                        mods.push(ModDecl {
                            path,
                            test_only: true,
                        });
                    }
                }
                i = item_end(&toks, i);
                continue;
            }
            Tok::Ident(kw) if kw == "mod" => {
                if let (Some((Tok::Ident(name), _)), Some((Tok::Punct(p), _))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    let mut path: Vec<String> = inline.iter().map(|(n, _)| n.clone()).collect();
                    path.push(name.clone());
                    if *p == ';' {
                        mods.push(ModDecl {
                            path,
                            test_only: false,
                        });
                        i += 3;
                        continue;
                    }
                    if *p == '{' {
                        depth += 1;
                        inline.push((name.clone(), depth));
                        i += 3;
                        continue;
                    }
                }
            }
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth -= 1;
            }
            Tok::Ident(head)
                if matches!(head.as_str(), "crate" | "super" | "self")
                    && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Path)
                    && !matches!(toks.get(i.wrapping_sub(1)), Some((Tok::Path, _))) =>
            {
                let mut found = Vec::new();
                let end = path_tree(&toks, i, &[], &mut found);
                for segments in found {
                    paths.push(FoundPath {
                        segments,
                        inline: inline.iter().map(|(n, _)| n.clone()).collect(),
                        line: *line,
                    });
                }
                i = end.max(i + 1);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    (paths, mods, file_test_only)
}

/// Every file reachable from the crate roots in `files` (path relative to `src/` → text).
fn module_tree(files: &BTreeMap<String, String>) -> BTreeMap<String, SourceFile> {
    let mut out = BTreeMap::new();
    let mut todo: Vec<(String, Vec<String>, bool)> = [("lib.rs", "lib"), ("main.rs", "bin")]
        .iter()
        .filter(|(f, _)| files.contains_key(*f))
        .map(|(f, root)| ((*f).to_owned(), vec![(*root).to_owned()], false))
        .collect();
    while let Some((rel, module, test_only)) = todo.pop() {
        let Some(text) = files.get(&rel) else {
            continue;
        };
        if out.contains_key(&rel) {
            continue;
        }
        let (_, mods, file_test) = scan(text);
        let test_only = test_only || file_test;
        // Where this file's child modules live.
        let p = Path::new(&rel);
        let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
        let parent = p.parent().map(Path::to_path_buf).unwrap_or_default();
        let dir: PathBuf = if module.len() == 1 || stem == "mod" {
            parent
        } else {
            parent.join(&stem)
        };
        for m in mods {
            let mut base = dir.clone();
            for seg in &m.path[..m.path.len() - 1] {
                base = base.join(seg);
            }
            let name = m.path.last().unwrap();
            let flat = base
                .join(format!("{name}.rs"))
                .to_string_lossy()
                .into_owned();
            let nested = base
                .join(name)
                .join("mod.rs")
                .to_string_lossy()
                .into_owned();
            let child = if files.contains_key(&flat) {
                flat
            } else {
                nested
            };
            let mut cm = module.clone();
            cm.extend(m.path.iter().cloned());
            todo.push((child, cm, test_only || m.test_only));
        }
        out.insert(
            rel,
            SourceFile {
                module,
                test_only,
                text: text.clone(),
            },
        );
    }
    out
}

/// `from` depends on `to`, first seen at `line` of `from`.
type Edges = BTreeMap<String, BTreeMap<String, usize>>;

/// The file-level dependency graph of the non-test files among `files`.
fn graph(files: &BTreeMap<String, String>) -> Edges {
    let tree = module_tree(files);
    let by_module: BTreeMap<Vec<String>, String> = tree
        .iter()
        .filter(|(_, f)| !f.test_only)
        .map(|(rel, f)| (f.module.clone(), rel.clone()))
        .collect();
    let mut edges: Edges = BTreeMap::new();
    for (rel, f) in tree.iter().filter(|(_, f)| !f.test_only) {
        let here = edges.entry(rel.clone()).or_default();
        let (paths, _, _) = scan(&f.text);
        for p in paths {
            let mut current = f.module.clone();
            current.extend(p.inline.iter().cloned());
            let mut full: Vec<String> = Vec::new();
            let mut segs = p.segments.iter().peekable();
            match segs.next().map(String::as_str) {
                Some("crate") => full.push(f.module[0].clone()),
                Some("self") => full = current.clone(),
                Some("super") => {
                    full = current.clone();
                    full.pop();
                    while segs.peek().map(|s| s.as_str()) == Some("super") {
                        segs.next();
                        full.pop();
                    }
                }
                _ => continue,
            }
            full.extend(segs.cloned());
            let target = (1..=full.len())
                .rev()
                .find_map(|n| by_module.get(&full[..n]));
            if let Some(target) = target {
                if target != rel {
                    here.entry(target.clone()).or_insert(p.line);
                }
            }
        }
    }
    edges
}

/// The strongly connected components of more than one file (Tarjan), each sorted.
fn cycles(edges: &Edges) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a Edges,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        let edges = s.edges;
        for w in edges.get(v).into_iter().flat_map(|m| m.keys()) {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                comp.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.found.push(comp);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found.sort();
    s.found
}

/// A readable report of `found`: each cycle with the edges inside it.
fn report(edges: &Edges, found: &[Vec<String>]) -> String {
    let mut out = String::new();
    for comp in found {
        out.push_str(&format!(
            "cycle of {} files: {}\n",
            comp.len(),
            comp.join(", ")
        ));
        for from in comp {
            for (to, line) in &edges[from] {
                if comp.contains(to) {
                    out.push_str(&format!("    src/{from}:{line} -> src/{to}\n"));
                }
            }
        }
    }
    out
}

/// Every `.rs` file under `dir`, keyed by its path relative to `root` (with `/`).
fn read_tree(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            read_tree(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).unwrap();
            let rel: Vec<String> = rel
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            out.insert(rel.join("/"), std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn src_has_no_file_level_import_cycles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    read_tree(&root, &root, &mut files);
    let edges = graph(&files);
    // The walk must see the crate: guards against a parser that finds nothing.
    assert!(
        edges.len() > 100,
        "only {} files reached from src/lib.rs and src/main.rs",
        edges.len()
    );
    let reached: usize = edges.values().map(BTreeMap::len).sum();
    assert!(reached > 500, "only {reached} file-to-file uses found");
    let found = cycles(&edges);
    assert!(
        found.is_empty(),
        "file-level import cycles under src/ (move the shared piece into a lower module that \
         imports none of them):\n{}",
        report(&edges, &found)
    );
}

/// Files for the self-checks below.
fn fixture(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
        .collect()
}

#[test]
fn a_cycle_through_use_super_and_crate_paths_in_code_is_found() {
    let files = fixture(&[
        ("lib.rs", "pub mod a;\npub mod b;\nmod c;\n"),
        ("a.rs", "use super::b::{self, B};\npub struct A;\n"),
        ("b.rs", "pub struct B;\nfn f() { let _ = crate::c::g(); }\n"),
        ("c.rs", "pub fn g() -> crate::a::A { crate::a::A }\n"),
    ]);
    let edges = graph(&files);
    let found = cycles(&edges);
    assert_eq!(
        found,
        vec![vec!["a.rs".to_owned(), "b.rs".into(), "c.rs".into()]]
    );
    let text = report(&edges, &found);
    assert!(text.contains("src/a.rs:1 -> src/b.rs"), "{text}");
    assert!(text.contains("src/b.rs:2 -> src/c.rs"), "{text}");
    assert!(text.contains("src/c.rs:1 -> src/a.rs"), "{text}");
}

#[test]
fn nested_groups_mod_rs_children_and_super_super_are_resolved() {
    let files = fixture(&[
        ("lib.rs", "pub mod store;\n"),
        (
            "store/mod.rs",
            "mod tx;\nmod kv;\nmod sub;\npub use tx::Tx;\n",
        ),
        (
            "store/tx.rs",
            "use crate::store::{kv::{Kv, other}, Store};\npub struct Tx;\n",
        ),
        ("store/kv.rs", "pub trait Kv {}\n"),
        ("store/sub.rs", "mod deep;\n"),
        ("store/sub/deep.rs", "use super::super::tx::Tx;\n"),
    ]);
    let edges = graph(&files);
    assert_eq!(
        edges["store/tx.rs"].keys().collect::<Vec<_>>(),
        ["store/kv.rs", "store/mod.rs"]
    );
    assert_eq!(
        edges["store/sub/deep.rs"].keys().collect::<Vec<_>>(),
        ["store/tx.rs"]
    );
    // `pub use tx::Tx` in the parent is a facade, not an edge: no cycle with tx.rs.
    assert!(edges["store/mod.rs"].is_empty());
    assert!(cycles(&edges).is_empty());
}

#[test]
fn test_code_comments_and_strings_close_no_cycle() {
    let files = fixture(&[
        (
            "lib.rs",
            "pub mod a;\npub mod b;\n#[cfg(test)]\nmod harness;\n",
        ),
        (
            "a.rs",
            "use crate::b::B;\n#[cfg(test)]\nmod tests;\n#[cfg(test)]\nmod inline {\n    use crate::a::A;\n    fn t() { crate::b::f(); }\n}\npub struct A;\n",
        ),
        // Only the test module of b names a, in every way the check must skip.
        (
            "b.rs",
            "//! See [`A`](crate::a::A).\npub struct B;\npub fn f() { let _ = \"crate::a::A\"; let _ = r#\"super::a\"#; let _ = '\"'; }\n/* crate::a::A */\n#[cfg(test)]\nuse crate::a::A;\n#[cfg(test)]\nmod tests { use super::super::a::A; }\n",
        ),
        ("a/tests.rs", "use crate::b::B;\nuse crate::a::A;\n"),
        ("harness.rs", "use crate::a::A;\nuse crate::b::B;\n"),
    ]);
    let edges = graph(&files);
    assert_eq!(edges["b.rs"].len(), 0, "{:?}", edges["b.rs"]);
    assert!(!edges.contains_key("a/tests.rs"));
    assert!(!edges.contains_key("harness.rs"));
    assert!(cycles(&edges).is_empty());

    // The same use outside `#[cfg(test)]` is a cycle.
    let mut files = files;
    files.insert(
        "b.rs".into(),
        "pub struct B;\nfn f() -> Option<crate::a::A> { None }\n".into(),
    );
    assert_eq!(
        cycles(&graph(&files)),
        vec![vec!["a.rs".to_owned(), "b.rs".into()]]
    );
}

#[test]
fn lifetimes_and_visibility_do_not_confuse_the_scan() {
    let files = fixture(&[
        ("lib.rs", "pub mod a;\npub mod b;\n"),
        (
            "a.rs",
            "pub(crate) struct A<'x>(&'x str);\npub(super) fn g<'a>(s: &'a str) -> char { let _ = 'y'; '\\n' }\nimpl<'a> A<'a> { fn h(&self) { self.0; } }\nfn k() { super::b::f(); }\n",
        ),
        (
            "b.rs",
            "pub fn f() { let _ = ['\\'', '\\\\', '\\u{41}']; self::c::h(); }\n#[cfg(test)]\npub(crate) mod c;\n",
        ),
        ("b/c.rs", "pub fn h() { crate::a::k(); }\n"),
    ]);
    let edges = graph(&files);
    assert_eq!(edges["a.rs"].keys().collect::<Vec<_>>(), ["b.rs"]);
    // b/c.rs is test-only, so b's use of it is no edge (it is not a production file).
    assert!(!edges.contains_key("b/c.rs"));
    assert!(edges["b.rs"].is_empty());
}
