//! The crate's layers point one way: a module imports only from layers below its own, and no circle of imports
//! forms, neither between top-level modules nor between the files of one module. The check reads `src/` as text
//! with the standard library alone, so it needs neither a build of the crate nor extra dependencies.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::Path;

/// The top-level modules of `src/`, bottom layer first: a module may use only modules of a lower rank (the index).
const LAYERS: &[&[&str]] = &[
    &["domain"],
    &["settings"],
    &["saga"],
    &["messages"],
    &["persistence"],
    &["mailbox"],
    &["actors"],
    &["timers"],
    &["cluster"],
    &["http", "loadgen", "admin_cli"],
    &["startup"],
];

/// Modules every layer may use; they in turn may use only `CROSS_CUTTING_MAY_USE`.
const CROSS_CUTTING: &[&str] = &["metrics", "telemetry"];
const CROSS_CUTTING_MAY_USE: &[&str] = &["domain", "settings", "saga"];

/// The crate root only declares the modules and the binary wires them together, so both may use anything.
const EXEMPT: &[&str] = &["src/lib.rs", "src/main.rs"];

#[test]
fn the_crate_s_layers_point_one_way() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    load(&root.join("src"), root, &mut files);
    let files: Vec<(&str, &str)> = files.iter().map(|(path, source)| (path.as_str(), source.as_str())).collect();
    let violations = check(&files);
    assert!(violations.is_empty(), "{} architecture violations:\n{}", violations.len(), violations.join("\n"));
}

/// Reads every `.rs` file below `dir`, in path order, as (path relative to `root` with `/` separators, source).
fn load(dir: &Path, root: &Path, files: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            load(&path, root, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            let relative = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            files.push((relative, fs::read_to_string(&path).unwrap()));
        }
    }
}

/// Checks the crate's sources, given as (path like `src/actors/loan.rs`, source); returns one line per violation.
fn check(files: &[(&str, &str)]) -> Vec<String> {
    let files: Vec<(&str, Vec<Token>)> =
        files.iter().filter(|(path, _)| !EXEMPT.contains(path)).map(|&(path, source)| (path, lex(source))).collect();
    let mut module_of: BTreeMap<&str, Vec<String>> =
        files.iter().map(|(path, _)| (*path, default_module(path))).collect();
    for (path, tokens) in &files {
        for (file, name) in path_attributes(tokens) {
            let module = [module_of[path].as_slice(), &[name.to_string()]].concat();
            if let Some(placed) = module_of.get_mut(join(path, file).as_str()) {
                *placed = module;
            }
        }
    }
    let modules: BTreeSet<Vec<String>> = module_of.values().cloned().collect();
    let scanned: Vec<Scanned> = files
        .iter()
        .map(|(file, tokens)| {
            let module = module_of[file].clone();
            let imports = imports(file, tokens, &module, &modules);
            Scanned { file, module, imports }
        })
        .collect();
    let mut violations = layer_violations(&scanned);
    violations.extend(top_level_circles(&scanned));
    violations.extend(inner_circles(&scanned, &modules));
    violations
}

/// A source file: its module path (`["actors", "loan"]`) and the paths into the crate that it names.
struct Scanned<'a> {
    file: &'a str,
    module: Vec<String>,
    imports: Vec<Import>,
}

/// A path into the crate, made absolute (`["http", "ApiError"]`), with the file and line that name it.
struct Import {
    target: Vec<String>,
    at: String,
    re_export: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Place {
    Rank(usize),
    CrossCutting,
    Unplaced,
}

fn place(module: &str) -> Place {
    if CROSS_CUTTING.contains(&module) {
        return Place::CrossCutting;
    }
    LAYERS.iter().position(|layer| layer.contains(&module)).map_or(Place::Unplaced, Place::Rank)
}

fn describe(place: Place) -> String {
    match place {
        Place::Rank(rank) => format!("rank {rank}"),
        Place::CrossCutting => "cross-cutting".to_string(),
        Place::Unplaced => "no layer".to_string(),
    }
}

fn layer_violations(scanned: &[Scanned]) -> Vec<String> {
    // Files go first so that an unplaced module is reported at its own file rather than at a use of it.
    let mut unplaced: BTreeMap<&str, String> = BTreeMap::new();
    for file in scanned.iter().filter(|file| place(&file.module[0]) == Place::Unplaced) {
        unplaced.entry(&file.module[0]).or_insert_with(|| file.file.to_string());
    }
    let mut violations = Vec::new();
    for file in scanned {
        let from = file.module[0].as_str();
        for import in &file.imports {
            let (to, at) = (import.target[0].as_str(), &import.at);
            let rule = match (place(from), place(to)) {
                _ if from == to => continue,
                (_, Place::Unplaced) => {
                    unplaced.entry(to).or_insert_with(|| at.clone());
                    continue;
                }
                (Place::CrossCutting, _) if !CROSS_CUTTING_MAY_USE.contains(&to) => {
                    format!("a cross-cutting module may only use {}", CROSS_CUTTING_MAY_USE.join(", "))
                }
                (Place::Rank(own), Place::Rank(other)) if other >= own => {
                    "a module may only use layers below it".into()
                }
                _ => continue,
            };
            let violation =
                format!("{at}: {from} ({}) uses {to} ({}): {rule}", describe(place(from)), describe(place(to)));
            // One line per place: `use crate::http::{A, B}` names `http` once.
            if !violations.contains(&violation) {
                violations.push(violation);
            }
        }
    }
    let mut reports: Vec<String> =
        unplaced.into_iter().map(|(module, at)| format!("{at}: module {module} has no layer")).collect();
    reports.extend(violations);
    reports
}

/// Edges `from -> to`, each with the location of the first import that makes it.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn add_edge(graph: &mut Graph, from: &str, to: &str, at: &str) {
    if from != to {
        graph.entry(from.to_string()).or_default().entry(to.to_string()).or_insert_with(|| at.to_string());
    }
}

fn top_level_circles(scanned: &[Scanned]) -> Vec<String> {
    let mut graph = Graph::new();
    for file in scanned {
        for import in &file.imports {
            add_edge(&mut graph, &file.module[0], &import.target[0], &import.at);
        }
    }
    let describe = |circle: Vec<(String, String)>| {
        let hops: Vec<String> =
            circle.iter().zip(circle.iter().cycle().skip(1)).map(|((_, at), (to, _))| format!("{to} ({at})")).collect();
        format!("circle between top-level modules: {} -> {}", circle[0].0, hops.join(" -> "))
    };
    circles(&graph).into_iter().map(describe).collect()
}

/// Circles among the direct children of each top-level directory module, its root file counting as one more node
/// named after the module. The root's `pub use` lines are the module's facade, not a dependency on a child.
fn inner_circles(scanned: &[Scanned], modules: &BTreeSet<Vec<String>>) -> Vec<String> {
    let mut reports = Vec::new();
    let directories: BTreeSet<&str> = modules.iter().filter(|m| m.len() > 1).map(|m| m[0].as_str()).collect();
    for top in directories {
        let children: BTreeSet<&str> =
            modules.iter().filter(|m| m[0] == top && m.len() > 1).map(|m| m[1].as_str()).collect();
        // Whatever is not inside a child (an item, a glob of the module) lives in the root file.
        let node =
            |module: &[String]| module.get(1).and_then(|child| children.get(child.as_str()).copied()).unwrap_or(top);
        let mut graph = Graph::new();
        for file in scanned.iter().filter(|file| file.module[0] == top) {
            for import in file.imports.iter().filter(|import| import.target[0] == top) {
                if !(file.module.len() == 1 && import.re_export) {
                    add_edge(&mut graph, node(&file.module), node(&import.target), &import.at);
                }
            }
        }
        for circle in circles(&graph) {
            let hops: Vec<String> = circle.iter().map(|(node, at)| format!("{node} ({at})")).collect();
            reports.push(format!("circle inside {top}: {} -> {}", hops.join(" -> "), circle[0].0));
        }
    }
    reports
}

/// The shortest circle through each edge that lies on one, as (node, where it uses the next node), rotated to start
/// at its smallest node so that a circle found from several of its edges is reported once.
fn circles(graph: &Graph) -> BTreeSet<Vec<(String, String)>> {
    let mut found = BTreeSet::new();
    for (from, targets) in graph {
        for to in targets.keys() {
            if let Some(mut circle) = shortest_path(graph, to, from) {
                circle.rotate_right(1);
                let smallest = (0..circle.len()).min_by_key(|&i| &circle[i]).unwrap_or(0);
                circle.rotate_left(smallest);
                let next = circle.iter().cycle().skip(1);
                found.insert(
                    circle.iter().zip(next).map(|(node, to)| (node.clone(), graph[node][to].clone())).collect(),
                );
            }
        }
    }
    found
}

/// Breadth-first, so the path found is a shortest one; it runs from `start` to `goal`, both included.
fn shortest_path<'a>(graph: &'a Graph, start: &'a str, goal: &str) -> Option<Vec<String>> {
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        if node == goal {
            let mut path = vec![node.to_string()];
            while let Some(&previous) = came_from.get(path[path.len() - 1].as_str()) {
                path.push(previous.to_string());
            }
            path.reverse();
            return Some(path);
        }
        for next in graph.get(node).into_iter().flat_map(BTreeMap::keys) {
            if next != start && !came_from.contains_key(next.as_str()) {
                came_from.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    None
}

/// `src/actors/loan.rs` is `actors::loan`, `src/actors/mod.rs` is `actors`.
fn default_module(path: &str) -> Vec<String> {
    let path = path.strip_prefix("src/").unwrap_or(path).strip_suffix(".rs").unwrap_or(path);
    let mut module: Vec<String> = path.split('/').map(str::to_string).collect();
    if module.len() > 1 && module.last().is_some_and(|last| last == "mod") {
        module.pop();
    }
    module
}

/// `#[path = "file"] mod name;` as (file, name): the file, relative to the declaring file's directory, is `name`.
fn path_attributes(tokens: &[Token]) -> impl Iterator<Item = (&str, &str)> {
    tokens.windows(6).enumerate().filter_map(|(i, window)| {
        let [hash, open, key, equals, file, close] = window else { return None };
        let attribute = hash.is("#") && open.is("[") && key.is("path") && equals.is("=") && close.is("]");
        let name = tokens[i + 6..].iter().skip_while(|token| !token.is("mod")).nth(1)?;
        Some((file.text.strip_prefix('"')?, name.text.as_str())).filter(|_| attribute)
    })
}

/// `relative`, resolved against the directory of the file `declaring`.
fn join(declaring: &str, relative: &str) -> String {
    let mut parts: Vec<&str> = declaring.split('/').collect();
    parts.pop();
    for part in relative.split('/') {
        match part {
            "." => {}
            ".." => drop(parts.pop()),
            _ => parts.push(part),
        }
    }
    parts.join("/")
}

/// A word, punctuation (`::` is one token) or a string literal, kept as `"` and its contents.
struct Token {
    text: String,
    line: usize,
}

impl Token {
    fn is(&self, text: &str) -> bool {
        self.text == text
    }

    fn is_word(&self) -> bool {
        self.text.starts_with(|c: char| c.is_alphanumeric() || c == '_')
    }
}

/// Splits source into tokens, dropping comments and character literals and keeping strings apart, so that text
/// inside them never reads as a path.
fn lex(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let (mut tokens, mut i, mut line) = (Vec::new(), 0, 1);
    while i < chars.len() {
        let start = i;
        let mut token = |text: &[char]| tokens.push(Token { text: text.iter().collect(), line });
        match (chars[i], at(i + 1)) {
            ('/', '/') => i = (i..chars.len()).find(|&j| chars[j] == '\n').unwrap_or(chars.len()),
            ('/', '*') => i = block_comment_end(&chars, i),
            ('"', _) => {
                let close = closing_quote(&chars, i + 1, None);
                token(&chars[i..close]);
                i = (close + 1).min(chars.len());
            }
            ('\'', '\\') => i = (i + 3..chars.len()).find(|&j| chars[j] == '\'').map_or(chars.len(), |j| j + 1),
            // `'a'` is a character; `'a` alone is a lifetime or label, left to lex as a harmless `'` and word.
            ('\'', _) if at(i + 2) == '\'' => i += 3,
            (':', ':') => {
                token(&[':', ':']);
                i += 2;
            }
            (c, _) if is_word(c) => {
                i = (i..chars.len()).find(|&j| !is_word(chars[j])).unwrap_or(chars.len());
                let hashes = chars[i..].iter().take_while(|&&c| c == '#').count();
                let raw = matches!(chars[start..i], ['r'] | ['b', 'r'] | ['c', 'r']) && at(i + hashes) == '"';
                if raw {
                    let close = closing_quote(&chars, i + hashes + 1, Some(hashes));
                    token(&chars[i + hashes..close]);
                    i = (close + 1 + hashes).min(chars.len());
                } else {
                    token(&chars[start..i]);
                }
            }
            (c, _) => {
                if !c.is_whitespace() {
                    token(&[c]);
                }
                i += 1;
            }
        }
        line += chars[start..i].iter().filter(|&&c| c == '\n').count();
    }
    tokens
}

/// Where a block comment starting at `i` ends; block comments nest.
fn block_comment_end(chars: &[char], mut i: usize) -> usize {
    let mut depth = 0;
    while i + 1 < chars.len() {
        let step = match (chars[i], chars[i + 1]) {
            ('/', '*') => 1,
            ('*', '/') => -1,
            _ => 0,
        };
        depth += step;
        i += if step == 0 { 1 } else { 2 };
        if depth == 0 {
            return i;
        }
    }
    chars.len()
}

/// The quote that closes a string whose contents start at `i`. A raw string (`raw_hashes` given) has no escapes and
/// closes at a quote followed by as many `#` as opened it.
fn closing_quote(chars: &[char], mut i: usize, raw_hashes: Option<usize>) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' if raw_hashes.is_none() => i += 2,
            '"' if chars[i + 1..].iter().take_while(|&&c| c == '#').count() >= raw_hashes.unwrap_or(0) => return i,
            _ => i += 1,
        }
    }
    chars.len()
}

/// Every path that `file`, module `module`, names into the crate: each leaf of a `use` tree, and each `a::b` in code
/// that starts with `crate`, `super`, `self` or a child module. Inline modules (`mod tests { ... }`) are tracked, so
/// that `super` inside them means the file's own module.
fn imports(file: &str, tokens: &[Token], module: &[String], modules: &BTreeSet<Vec<String>>) -> Vec<Import> {
    let (mut imports, mut written) = (Vec::new(), Vec::new());
    let mut here = module.to_vec();
    let mut inline_depths: Vec<usize> = Vec::new(); // the brace depth inside each inline module in `here`
    let (mut depth, mut i) = (0, 0);
    while let Some(token) = tokens.get(i) {
        let path_start = token.is_word()
            && tokens.get(i + 1).is_some_and(|next| next.is("::"))
            && !(i > 0 && (tokens[i - 1].is("::") || tokens[i - 1].is(".")));
        if token.is("mod") && tokens.get(i + 2).is_some_and(|brace| brace.is("{")) {
            here.push(tokens[i + 1].text.clone());
            inline_depths.push(depth + 1);
            i += 2;
        } else if token.is("use") || path_start {
            // A path in code reads like a `use` tree without braces.
            let re_export = token.is("use") && is_public(&tokens[..i]);
            i = use_tree(tokens, i + usize::from(token.is("use")), &[], &mut written);
            for (target, line) in written.drain(..).filter_map(|path| resolve(&path, &here, modules)) {
                imports.push(Import { target, at: format!("{file}:{line}"), re_export });
            }
        } else {
            if token.is("{") {
                depth += 1;
            } else if token.is("}") {
                depth = depth.saturating_sub(1);
                if inline_depths.last().is_some_and(|&inside| inside > depth) {
                    inline_depths.pop();
                    here.pop();
                }
            }
            i += 1;
        }
    }
    imports
}

/// `pub use` and `pub(crate) use` re-export: the `use` follows `pub` or `pub(...)`.
fn is_public(before: &[Token]) -> bool {
    match before.last() {
        Some(last) if last.is("pub") => true,
        Some(last) if last.is(")") => {
            before.iter().rposition(|token| token.is("(")).is_some_and(|open| open > 0 && before[open - 1].is("pub"))
        }
        _ => false,
    }
}

/// A path segment and its line.
type Segment = (String, usize);

/// Appends every leaf path of the use tree at `i` (`a::{b, c::{d, e}}` gives three) to `out`; returns where it ends.
fn use_tree(tokens: &[Token], mut i: usize, prefix: &[Segment], out: &mut Vec<Vec<Segment>>) -> usize {
    let mut path = prefix.to_vec();
    while let Some(token) = tokens.get(i) {
        if token.is("{") {
            i += 1;
            while tokens.get(i).is_some_and(|token| !token.is("}")) {
                let end = use_tree(tokens, i, &path, out);
                if end == i {
                    break;
                }
                i = end + usize::from(tokens.get(end).is_some_and(|token| token.is(",")));
            }
            return i + 1;
        }
        if !(token.is_word() || token.is("*")) {
            break;
        }
        path.push((token.text.clone(), token.line));
        i += 1;
        if !tokens.get(i).is_some_and(|next| next.is("::")) {
            break;
        }
        i += 1;
    }
    out.push(path);
    // Skips a rename: `use a::b as c`.
    i + if tokens.get(i).is_some_and(|token| token.is("as")) { 2 } else { 0 }
}

/// Makes a path written in module `here` absolute, with the line of its first named segment; `None` when it does
/// not point into the crate (`std::fmt`, a variant of a local enum) or names the crate root itself.
fn resolve(path: &[Segment], here: &[String], modules: &BTreeSet<Vec<String>>) -> Option<(Vec<String>, usize)> {
    let is_child =
        |name: &str| modules.iter().any(|m| m.len() > here.len() && m.starts_with(here) && m[here.len()] == name);
    let mut target = match path.first()?.0.as_str() {
        "crate" => Vec::new(),
        "self" | "super" => here.to_vec(),
        child if is_child(child) => here.to_vec(),
        _ => return None,
    };
    let mut line = None;
    for (index, (name, at)) in path.iter().enumerate() {
        match name.as_str() {
            "crate" if index == 0 => {}
            "self" | "*" => {}
            "super" => drop(target.pop()),
            _ => {
                line.get_or_insert(*at);
                target.push(name.clone());
            }
        }
    }
    Some((target, line.unwrap_or(path[path.len() - 1].1))).filter(|(target, _)| !target.is_empty())
}

mod checker {
    use super::check;

    fn assert_reports(files: &[(&str, &str)], expected: &[&str]) {
        assert_eq!(check(files), expected);
    }

    #[test]
    fn an_upward_use_is_reported_with_its_line() {
        assert_reports(
            &[("src/persistence/writer.rs", "use std::fmt;\n\nuse crate::http::ApiError;\n")],
            &["src/persistence/writer.rs:3: persistence (rank 4) uses http (rank 9): a module may only use layers below it"],
        );
    }

    #[test]
    fn each_member_of_a_grouped_use_counts() {
        let source =
            "use crate::{\n    domain::Money,\n    saga::{Transition, machine::Step},\n    http::{a, b::{C, D}},\n};\n";
        assert_reports(
            &[("src/persistence/mod.rs", source)],
            &["src/persistence/mod.rs:4: persistence (rank 4) uses http (rank 9): a module may only use layers below it"],
        );
    }

    #[test]
    fn an_inline_path_is_reported() {
        assert_reports(
            &[("src/saga/machine.rs", "fn f() {\n    let _ = crate::http::f();\n}\n")],
            &["src/saga/machine.rs:2: saga (rank 2) uses http (rank 9): a module may only use layers below it"],
        );
    }

    #[test]
    fn comments_and_literals_are_not_imports() {
        let source = r##"//! Unlike `crate::http::Docs`, this module ...
/// Calls crate::http::f().
/* use crate::http::A; /* nested */ crate::http::B */
const A: &str = "use crate::http::A;";
const B: &str = r#"crate::http::B "quoted" "#;
const C: char = '"';
const D: &str = "escaped \" crate::http::C";
fn f<'a>(x: &'a str) -> &'a str { x }
"##;
        assert_reports(&[("src/domain/money.rs", source)], &[]);
    }

    #[test]
    fn a_downward_or_cross_cutting_use_is_fine() {
        let source = "use crate::domain::Money;\nuse crate::{mailbox::Postman, metrics::Metrics, telemetry};\n";
        assert_reports(&[("src/actors/loan.rs", source)], &[]);
    }

    #[test]
    fn a_cross_cutting_module_may_use_only_the_bottom_layers() {
        assert_reports(
            &[("src/metrics.rs", "use crate::domain::LoanId;\nuse crate::persistence::Writer;\n")],
            &["src/metrics.rs:2: metrics (cross-cutting) uses persistence (rank 4): \
               a cross-cutting module may only use domain, settings, saga"],
        );
    }

    #[test]
    fn a_module_without_a_layer_is_reported_once() {
        let files = [("src/live.rs", "use crate::http::Streams;\n"), ("src/startup.rs", "use crate::live::Live;\n")];
        assert_reports(&files, &["src/live.rs: module live has no layer"]);
    }

    #[test]
    fn a_circle_between_children_is_reported() {
        let files = [
            ("src/actors/directory.rs", "use super::loan::LoanActor;\n"),
            ("src/actors/loan.rs", "use std::sync::Arc;\n\nuse crate::actors::directory::LoanDirectory;\n"),
            ("src/actors/mod.rs", "mod directory;\nmod loan;\n"),
        ];
        assert_reports(
            &files,
            &["circle inside actors: directory (src/actors/directory.rs:1) -> loan (src/actors/loan.rs:3) -> directory"],
        );
    }

    #[test]
    fn the_root_s_facade_is_not_an_edge_but_its_other_uses_are() {
        let loan = "use super::Registry;\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n";
        let root = "mod loan;\npub use loan::LoanActor;\npub(crate) use self::loan::Spawn;\n";
        assert_reports(&[("src/actors/loan.rs", loan), ("src/actors/mod.rs", root)], &[]);
        let root = format!("{root}fn start() {{\n    loan::LoanActor::start();\n}}\n");
        assert_reports(
            &[("src/actors/loan.rs", loan), ("src/actors/mod.rs", &root)],
            &["circle inside actors: actors (src/actors/mod.rs:5) -> loan (src/actors/loan.rs:1) -> actors"],
        );
    }

    #[test]
    fn a_path_attribute_places_its_file_under_the_declaring_module() {
        let files = [
            ("src/domain/application.rs", "#[cfg(test)]\n#[path = \"application_tests.rs\"]\nmod tests;\n"),
            ("src/domain/application_tests.rs", "use super::*;\nuse super::super::money::Money;\n"),
            ("src/domain/money.rs", "use super::application::Applicant;\n"),
        ];
        assert_reports(
            &files,
            &["circle inside domain: application (src/domain/application_tests.rs:2) -> money (src/domain/money.rs:1) -> \
               application"],
        );
    }

    #[test]
    fn a_circle_between_top_level_modules_is_reported() {
        let files = [
            ("src/actors/loan.rs", "use crate::mailbox::Envelope;\n"),
            ("src/mailbox/broker/mod.rs", "\nuse crate::actors::LoanActor;\n"),
        ];
        assert_reports(
            &files,
            &[
                "src/mailbox/broker/mod.rs:2: mailbox (rank 5) uses actors (rank 6): a module may only use layers below it",
                "circle between top-level modules: actors -> mailbox (src/actors/loan.rs:1) -> \
                 actors (src/mailbox/broker/mod.rs:2)",
            ],
        );
    }
}
