//! Property tests of the two loaders ops feed by hand: the policy (`policy.toml`) and the daemon
//! config (`plazo.toml`). Starting from the shipped files, random edits (lines deleted,
//! duplicated or swapped, values replaced by hostile ones, random text inserted) and random
//! text must never panic, and every refusal names where: the config's `file:line:column`, the
//! policy file (with line and column when the problem has a position) or a template file.
//! A reload and `plazo check` accept and refuse the same policies.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use plazo::config::load_daemon_config;
use plazo::daemon::reload_policy_into;
use plazo::policy::{PolicyError, load_checked_policy, parse_policy};
use plazo::service::PolicyHandle;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped(name: &str) -> String {
    std::fs::read_to_string(repo().join("config").join(name)).unwrap()
}

/// Values that have broken parsers before, or might.
const HOSTILE: &[&str] = &[
    "\"\"",
    "\" \"",
    "\"\\u0000\"",
    "\"\\r\\n\"",
    "\"\u{202e}gnp.exe\"",
    "\"\u{200f}\u{fe0f}\"",
    "\"ñandú 🦜\"",
    "-1",
    "0",
    "18446744073709551616",
    "-9223372036854775808",
    "1e400",
    "nan",
    "inf",
    "true",
    "[]",
    "[\"\"]",
    "{}",
    "1979-05-27T07:32:00Z",
    "\"../../../../etc/passwd\"",
    "\"/\"",
    "\"-99999999999d\"",
    "\"+4294967296d\"",
    "\"25:61\"",
    "\"mon-mon-mon\"",
    "\"{{ client.nmae }}\"",
    "'''",
    "\"\"\"",
    "[[",
    "=",
];

/// One edit of a text.
#[derive(Debug, Clone)]
enum Edit {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    /// Replace the value of the n-th `key = value` line.
    ReplaceValue(usize, String),
    /// Insert text at a character position.
    Insert(usize, String),
    /// Cut the text at a character position.
    Truncate(usize),
}

fn hostile_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(HOSTILE).prop_map(str::to_owned),
        1 => "\"[^\"\\\\]{0,40}\"",
        1 => "-?[0-9]{1,25}",
        1 => Just(format!("\"{}\"", "x".repeat(10_000))),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        1 => any::<usize>().prop_map(Edit::DeleteLine),
        1 => any::<usize>().prop_map(Edit::DuplicateLine),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        3 => (any::<usize>(), hostile_value()).prop_map(|(n, v)| Edit::ReplaceValue(n, v)),
        1 => (any::<usize>(), any::<String>()).prop_map(|(n, s)| Edit::Insert(n, s)),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(n, b)| Edit::Insert(n, String::from_utf8_lossy(&b).into_owned())),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(text: &str, edit: &Edit) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let n = lines.len().max(1);
    match edit {
        Edit::DeleteLine(i) => {
            if !lines.is_empty() {
                lines.remove(i % n);
            }
        }
        Edit::DuplicateLine(i) => {
            if let Some(l) = lines.get(i % n).cloned() {
                lines.insert(i % n, l);
            }
        }
        Edit::SwapLines(a, b) => {
            if !lines.is_empty() {
                lines.swap(a % n, b % n);
            }
        }
        Edit::ReplaceValue(i, v) => {
            let keyed: Vec<usize> = lines
                .iter()
                .enumerate()
                .filter(|(_, l)| !l.trim_start().starts_with('#') && l.contains(" = "))
                .map(|(i, _)| i)
                .collect();
            if !keyed.is_empty() {
                let at = keyed[i % keyed.len()];
                let key = lines[at].split(" = ").next().unwrap().to_owned();
                lines[at] = format!("{key} = {v}");
            }
        }
        Edit::Insert(i, s) => {
            let chars: Vec<char> = text.chars().collect();
            let at = i % (chars.len() + 1);
            let mut out: String = chars[..at].iter().collect();
            out.push_str(s);
            out.extend(&chars[at..]);
            return out;
        }
        Edit::Truncate(i) => {
            let chars: Vec<char> = text.chars().collect();
            return chars[..i % (chars.len() + 1)].iter().collect();
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

fn mutated(base: String) -> impl Strategy<Value = String> {
    proptest::collection::vec(edit(), 1..4)
        .prop_map(move |edits| edits.iter().fold(base.clone(), |t, e| apply(&t, e)))
}

/// The policy as a temp file whose templates are the shipped ones.
fn policy_file(dir: &Path, text: &str) -> PathBuf {
    let templates = repo().join("config/templates");
    let text = text.replace(
        "templates_dir = \"templates\"",
        &format!("templates_dir = {:?}", templates.display().to_string()),
    );
    let path = dir.join("policy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The shipped daemon config, written into `dir` (its data directory there too) and loaded: a
/// reload checks the policy it names (`dir/policy.toml`) against it.
fn daemon_config_in(dir: &Path) -> plazo::config::DaemonConfig {
    let config = shipped("plazo.toml").replace(
        "data_dir = \"data\"",
        &format!("data_dir = {:?}", dir.join("data").display().to_string()),
    );
    std::fs::write(dir.join("plazo.toml"), config).unwrap();
    load_daemon_config(&dir.join("plazo.toml")).unwrap()
}

/// A refused policy names where the problem is.
fn assert_policy_error_located(err: &PolicyError, origin: &Path) {
    let msg = err.to_string();
    let file = origin.display().to_string();
    match err {
        PolicyError::Syntax { location, .. } => {
            assert!(msg.starts_with(&file), "{msg}");
            assert!(
                location.line.is_some() && location.column.is_some(),
                "a syntax error has a position: {msg}"
            );
        }
        PolicyError::Invalid { location, .. } => {
            assert!(msg.starts_with(&file), "{msg}");
            assert!(
                location.line.is_some() && location.column.is_some(),
                "every invalid value has a position: {msg}"
            );
        }
        PolicyError::Read { .. } => {
            assert!(msg.starts_with(&file), "{msg}");
        }
        PolicyError::Templates(_) | PolicyError::TemplateChecks(_) => {
            assert!(msg.contains("templates"), "names a template file: {msg}");
        }
        // About the daemon config's `[events.partners]`: names that file, line and column.
        PolicyError::UnknownPartner { at, .. } => {
            assert!(msg.starts_with(at.as_str()), "{msg}");
            assert!(at.matches(':').count() >= 2, "file:line:column: {msg}");
        }
    }
    assert!(!msg.trim().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn mutated_policies_never_panic_and_errors_name_a_location(text in mutated(shipped("policy.toml"))) {
        let origin = repo().join("config/policy.toml");
        if let Err(e) = parse_policy(&text, &origin) {
            assert_policy_error_located(&e, &origin);
        }
    }

    #[test]
    fn random_text_is_never_a_policy_and_never_a_panic(text in any::<String>()) {
        let origin = repo().join("config/policy.toml");
        let err = parse_policy(&text, &origin).unwrap_err();
        assert_policy_error_located(&err, &origin);
    }

    #[test]
    fn mutated_configs_never_panic_and_errors_name_file_line_column(text in mutated(shipped("plazo.toml"))) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policy.toml"), "").unwrap();
        let path = dir.path().join("plazo.toml");
        std::fs::write(&path, &text).unwrap();
        if let Err(e) = load_daemon_config(&path) {
            let msg = e.to_string();
            let rest = msg.strip_prefix(&format!("{}:", path.display())).unwrap_or_else(|| panic!("{msg}"));
            let mut parts = rest.splitn(3, ':');
            let line = parts.next().unwrap_or_default();
            let col = parts.next().unwrap_or_default();
            prop_assert!(line.parse::<usize>().is_ok_and(|l| l >= 1), "{}", msg);
            prop_assert!(col.parse::<usize>().is_ok_and(|c| c >= 1), "{}", msg);
        }
    }

    #[test]
    fn random_text_is_never_a_config_and_never_a_panic(text in any::<String>()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plazo.toml");
        std::fs::write(&path, &text).unwrap();
        if let Err(e) = load_daemon_config(&path) {
            let msg = e.to_string();
            prop_assert!(msg.starts_with(&format!("{}:", path.display())), "{}", msg);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// `plazo check` runs [`load_checked_policy`]; a reload must accept exactly what it
    /// accepts, and leave the policy in force untouched when it refuses.
    #[test]
    fn reload_accepts_exactly_what_check_accepts(text in mutated(shipped("policy.toml"))) {
        let dir = tempfile::tempdir().unwrap();
        let good = policy_file(dir.path(), &shipped("policy.toml"));
        let config = daemon_config_in(dir.path());
        let handle = PolicyHandle::new(load_checked_policy(&good).unwrap());
        let before = handle.current();
        let path = policy_file(dir.path(), &text);
        let check = load_checked_policy(&path);
        let reload = reload_policy_into(&handle, &config);
        prop_assert_eq!(check.is_ok(), reload.is_ok(), "check: {:?}\nreload: {:?}", check.err(), reload.err());
        if let Err(e) = reload {
            prop_assert!(std::sync::Arc::ptr_eq(&before, &handle.current()));
            prop_assert_eq!(e.to_string(), check.err().map(|e| e.to_string()).unwrap_or_default());
        }
    }
}

/// The same agreement against the real `plazo check` binary, on fewer inputs (each is a
/// process).
#[test]
fn the_check_binary_and_reload_agree_on_mutated_policies() {
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new(Config {
        cases: 24,
        ..Config::default()
    });
    runner
        .run(&mutated(shipped("policy.toml")), |text| {
            let dir = tempfile::tempdir().unwrap();
            let path = policy_file(dir.path(), &text);
            let config = daemon_config_in(dir.path());
            assert_eq!(config.policy_path(), path);
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_plazo"))
                .args(["check", "--config"])
                .arg(dir.path().join("plazo.toml"))
                .current_dir(dir.path())
                .env_remove("RUST_LOG")
                .output()
                .unwrap();
            let good_dir = tempfile::tempdir().unwrap();
            let good = policy_file(good_dir.path(), &shipped("policy.toml"));
            let handle = PolicyHandle::new(load_checked_policy(&good).unwrap());
            let reload = reload_policy_into(&handle, &config);
            prop_assert_eq!(
                out.status.success(),
                reload.is_ok(),
                "check said:\n{}{}\nreload: {:?}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                reload.err()
            );
            Ok(())
        })
        .unwrap();
}
