#![allow(clippy::unwrap_used, clippy::panic)]
//! README examples must not go stale: a literal date in a command or request body is refused
//! by the daemon once it has passed (a promise date, a `due_before` filter that now matches
//! everything, a reminder range that is empty). Shell examples use the `day N` helper from
//! "Trying the API" instead. Sample *outputs* (```json blocks) and a few deliberate literals
//! (a fixed `--now` for a simulation, a historical report range) are allowed.

/// A shell line with a literal date that is fine: it never goes stale.
const ALLOWED: &[&str] = &[
    // `plazo plan ... --now` simulates at a fixed instant on purpose.
    "--now ",
    // A report over a past quarter stays a valid range.
    "plazo report ",
];

/// Languages whose code blocks are commands or request bodies (not sample output).
fn is_command_block(lang: &str) -> bool {
    matches!(lang, "" | "sh" | "bash" | "shell" | "console")
}

/// Whether `line` holds a literal `20YY-MM-DD` date.
fn has_literal_date(line: &str) -> bool {
    let b = line.as_bytes();
    b.windows(10).any(|w| {
        let d = |i: usize| w[i].is_ascii_digit();
        w[0] == b'2'
            && w[1] == b'0'
            && d(2)
            && d(3)
            && w[4] == b'-'
            && d(5)
            && d(6)
            && w[7] == b'-'
            && d(8)
            && d(9)
    })
}

/// `(line number, line)` of every stale-prone literal date in a command block of `markdown`.
fn stale_dates(markdown: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut block: Option<String> = None;
    for (i, line) in markdown.lines().enumerate() {
        if let Some(rest) = line.trim_start().strip_prefix("```") {
            block = match block {
                Some(_) => None,
                None => Some(rest.trim().to_string()),
            };
            continue;
        }
        let Some(lang) = &block else { continue };
        if is_command_block(lang)
            && has_literal_date(line)
            && !ALLOWED.iter().any(|a| line.contains(a))
        {
            found.push((i + 1, line.to_string()));
        }
    }
    found
}

#[test]
fn readme_commands_and_request_bodies_have_no_literal_dates() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let stale = stale_dates(&readme);
    assert!(
        stale.is_empty(),
        "README examples with literal dates (use $(day N) as in \"Trying the API\"):\n{}",
        stale
            .iter()
            .map(|(n, l)| format!("README.md:{n}: {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The helper the examples rely on is still defined.
    assert!(readme.contains("day() { date -u -d \"$1 days\" +%F; }"));
}

#[test]
fn the_scanner_finds_dates_in_commands_and_skips_outputs_and_the_allow_list() {
    let md = "text 2026-01-01 outside a block\n\
```sh\n\
api 'localhost:8080/v1/invoices?due_before=2026-12-31'\n\
api \"localhost:8080/v1/invoices?due_before=$(day +30)\"\n\
  -d '{\"promise\": {\"date\": \"2026-03-06\"}}'\n\
plazo plan --now 2026-11-20T12:00:00Z\n\
plazo report --from 2026-01-01 --to 2026-04-01\n\
```\n\
```json\n\
{\"created_at\": \"2026-11-24T01:56:53Z\"}\n\
```\n\
```\n\
curl -d '{\"due_at\": \"2027-02-03\"}'\n\
```\n";
    let lines: Vec<usize> = stale_dates(md).into_iter().map(|(n, _)| n).collect();
    assert_eq!(lines, vec![3, 5, 13]);
    assert!(!has_literal_date("2026-1-01 and 19-12-2026"));
    assert!(has_literal_date("x2099-12-31y"));
}
