//! The real `plazo` binary: `check`, `plan`, and SIGHUP policy reload of `serve`.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Daemon, config_copy, free_port, repo, step, test_policy, write};
use serde_json::json;

fn plazo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plazo"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Replaces the only occurrence of `from` in `path`, returning its 1-based line.
fn edit_once(path: &Path, from: &str, to: &str) -> usize {
    let s = std::fs::read_to_string(path).unwrap();
    assert_eq!(s.matches(from).count(), 1, "{from:?} must occur once");
    let line = s[..s.find(from).unwrap()].matches('\n').count() + 1;
    std::fs::write(path, s.replacen(from, to, 1)).unwrap();
    line
}

#[test]
fn check_accepts_the_shipped_config_and_lists_segments() {
    let cfg = repo().join("config/plazo.toml");
    let out = plazo(&["check", "--config", cfg.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("segment      standard -> cadence standard [courtesy -3d, due_today +0d"),
        "{stdout}"
    );
    assert!(
        stdout.contains("segment      late_payers -> cadence close_follow_up"),
        "{stdout}"
    );
    assert!(stdout.contains("templates      ok"), "{stdout}");
}

#[test]
fn check_rejects_a_bad_offset_with_file_line_column_and_field() {
    let dir = config_copy();
    let policy = dir.path().join("policy.toml");
    // The third step of the standard cadence.
    let line = edit_once(&policy, "offset = \"+3d\"", "offset = \"+3x\"");
    let out = plazo(&[
        "check",
        "--config",
        dir.path().join("plazo.toml").to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    let loc = format!("{}:{line}:10:", policy.display());
    assert!(stderr.contains(&loc), "want {loc} in:\n{stderr}");
    assert!(
        stderr.contains("cadences.standard.steps[2].offset"),
        "{stderr}"
    );
    assert!(stderr.contains("\"+3x\""), "{stderr}");
}

#[test]
fn check_rejects_an_unknown_field_with_file_line_column_and_field() {
    let dir = config_copy();
    let policy = dir.path().join("policy.toml");
    let line = edit_once(
        &policy,
        "name = \"courtesy\"\n",
        "name = \"courtesy\"\ncolour = \"red\"\n",
    ) + 1;
    let out = plazo(&[
        "check",
        "--config",
        dir.path().join("plazo.toml").to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    let loc = format!("{}:{line}:1:", policy.display());
    assert!(stderr.contains(&loc), "want {loc} in:\n{stderr}");
    assert!(
        stderr.contains("cadences.standard.steps[0].colour"),
        "{stderr}"
    );
    assert!(stderr.contains("unknown field"), "{stderr}");
}

#[test]
fn check_rejects_a_segment_rule_naming_an_unknown_fact_with_file_line_column() {
    let dir = config_copy();
    let policy = dir.path().join("policy.toml");
    let line = edit_once(
        &policy,
        "client.facts.avg_days_late > 15\"",
        "client.facts.avg_days_lately > 15\"",
    );
    let text_of_line = std::fs::read_to_string(&policy).unwrap();
    let rule_line = text_of_line.lines().nth(line - 1).unwrap();
    assert!(rule_line.starts_with("when = "), "{rule_line}");
    // 1-based column of the unknown field inside the quoted rule.
    let col = rule_line.find("client.facts.avg_days_lately").unwrap() + 1;
    let out = plazo(&[
        "check",
        "--config",
        dir.path().join("plazo.toml").to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "check accepted it:\n{stderr}");
    assert_ne!(out.status.code(), Some(0));
    let loc = format!(
        "{}:{line}:{col}: segments.late_payers.when:",
        policy.display()
    );
    assert!(stderr.contains(&loc), "want {loc} in:\n{stderr}");
    assert!(
        stderr.contains("unknown field `client.facts.avg_days_lately`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("client.facts.avg_days_late"),
        "names what rules can read: {stderr}"
    );
}

#[test]
fn check_accepts_the_shipped_events_example_once_uncommented() {
    let dir = config_copy();
    let cfg = dir.path().join("plazo.toml");
    let shipped = std::fs::read_to_string(&cfg).unwrap();
    let from = shipped
        .find("# [events]\n")
        .expect("a commented [events] example");
    let end_marker = "# secret = { env = \"PLAZO_PARTNER_COBRANZAS_SECRET\" }\n";
    let to = from + shipped[from..].find(end_marker).unwrap() + end_marker.len();
    let block: String = shipped[from..to]
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            // Settings and tables are uncommented; prose stays a comment.
            Some(setting) if setting.starts_with('[') || setting.contains(" = ") => setting,
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        block.contains("[events.partners.cobranzas_norte]\n"),
        "{block}"
    );
    std::fs::write(
        &cfg,
        format!("{}{block}{}", &shipped[..from], &shipped[to..]),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_plazo"))
        .args(["check", "--config", cfg.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .env(
            "PLAZO_EVENTS_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )
        .env(
            "PLAZO_PARTNER_COBRANZAS_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}\n{block}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `plazo plan` output rows by step name: (local time, UTC).
fn plan_rows(invoice: serde_json::Value, client: serde_json::Value) -> Vec<(String, String)> {
    plan_stdout(invoice, client)
        .lines()
        .skip(2)
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            // # step offset channels Day YYYY-MM-DD HH:MM ZONE UTC status
            (
                format!("{} {} {} {}", cols[1], cols[5], cols[6], cols[7]),
                format!("{} {}", cols[1], cols[8]),
            )
        })
        .collect()
}

/// What `plazo plan` prints for `invoice` of `client` with the shipped config, as of
/// 2026-03-01 12:00 UTC.
fn plan_stdout(invoice: serde_json::Value, client: serde_json::Value) -> String {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inv.json");
    let cli = dir.path().join("client.json");
    std::fs::write(&inv, invoice.to_string()).unwrap();
    std::fs::write(&cli, client.to_string()).unwrap();
    let cfg = repo().join("config/plazo.toml");
    let out = plazo(&[
        "plan",
        "--config",
        cfg.to_str().unwrap(),
        "--invoice",
        inv.to_str().unwrap(),
        "--client",
        cli.to_str().unwrap(),
        "--now",
        "2026-03-01T12:00:00Z",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    stdout
}

#[test]
fn plan_says_why_a_step_is_deferred() {
    let out = plan_stdout(
        json!({"id": "inv-1", "currency": "COP", "amount": "1250000", "due_at": "2026-03-20"}),
        json!({"id": "c-1", "name": "Ana", "timezone": "America/Bogota", "country": "CO"}),
    );
    let line = out
        .lines()
        .find(|l| l.contains("friendly_overdue"))
        .unwrap();
    assert!(
        line.contains("Deferred (cadence time Mon 2026-03-23 09:00 -05; co_ley_2300 excludes public holidays (Día de San José (observado)))"),
        "{out}"
    );
    assert!(
        out.contains("\nhours        Mon–Fri 08:00–19:00; Sat–Sun closed\n"),
        "{out}"
    );
    assert!(out.contains("\npresets      co_ley_2300\n"), "{out}");
    assert!(
        out.contains("\ncap          co_ley_2300: 1 contact a day (checked at send time)\n"),
        "{out}"
    );
    assert!(
        out.contains("\ngrouping     one message a day per client"),
        "{out}"
    );
    let line = out.lines().find(|l| l.contains("final_notice")).unwrap();
    assert!(
        line.contains("outside the contact window (Sun closed)"),
        "{out}"
    );
}

#[test]
fn plan_prints_local_and_utc_times_in_bogota() {
    let rows = plan_rows(
        json!({"id": "inv-1", "currency": "COP", "amount": "1250000", "due_at": "2026-03-20"}),
        json!({"id": "c-1", "name": "Ana", "timezone": "America/Bogota"}),
    );
    let (local, utc): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
    assert_eq!(
        local,
        [
            "courtesy 2026-03-17 09:00 -05",
            "due_today 2026-03-20 08:30 -05",
            // +3d is Monday 2026-03-23, San José (19 March moved to Monday, Ley 51/1983):
            // the shipped policy applies co_ley_2300, so the next working day at 08:00.
            "friendly_overdue 2026-03-24 08:00 -05",
            "firm_overdue 2026-03-30 09:00 -05",
            // +30d is Sunday 2026-04-19: the mon-fri window moves it to Monday 08:00.
            "final_notice 2026-04-20 08:00 -05",
            // The hand-off to the agency (no message; shown with its action).
            "to_agency 2026-05-19 09:00 -05",
        ]
    );
    assert_eq!(
        utc,
        [
            "courtesy 2026-03-17T14:00Z",
            "due_today 2026-03-20T13:30Z",
            "friendly_overdue 2026-03-24T13:00Z",
            "firm_overdue 2026-03-30T14:00Z",
            "final_notice 2026-04-20T13:00Z",
            "to_agency 2026-05-19T14:00Z",
        ]
    );
}

#[test]
fn plan_keeps_local_wall_time_across_new_york_spring_forward() {
    // DST starts 2026-03-08 in America/New_York: 09:00 is 14:00Z before, 13:00Z after.
    let rows = plan_rows(
        json!({"id": "inv-2", "currency": "USD", "amount": "100", "due_at": "2026-03-09"}),
        json!({"id": "c-2", "name": "Ann", "timezone": "America/New_York", "locale": "en"}),
    );
    let (local, utc): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
    assert_eq!(local[0], "courtesy 2026-03-06 09:00 EST");
    assert_eq!(utc[0], "courtesy 2026-03-06T14:00Z");
    assert_eq!(local[1], "due_today 2026-03-09 08:30 EDT");
    assert_eq!(utc[1], "due_today 2026-03-09T12:30Z");
    assert_eq!(local[2], "friendly_overdue 2026-03-12 09:00 EDT");
    assert_eq!(utc[2], "friendly_overdue 2026-03-12T13:00Z");
}

// ---------------------------------------------------------------------------------------------
// SIGHUP reload of the running daemon.

fn hup_policy(courtesy_offset: &str) -> String {
    test_policy(
        "America/Bogota",
        "es",
        ("08:00", "19:00"),
        &["standard"],
        &[
            step("standard", "courtesy", courtesy_offset, None, &["email"]),
            step("standard", "due_today", "0d", None, &["email"]),
        ],
    )
}

fn hup(d: &Daemon) {
    let st = Command::new("kill")
        .arg("-HUP")
        .arg(d.child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

fn wait_log(d: &Daemon, needle: &str, count: usize) {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if d.log_text().matches(needle).count() >= count {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("log never said {needle:?}:\n{}", d.log_text());
}

fn put_invoice(d: &Daemon, id: &str) -> String {
    let (st, v) = d.api(
        "PUT",
        &format!("/v1/invoices/{id}"),
        Some(
            &json!({"client_id": "cli-1", "number": id, "currency": "COP", "amount": "1000",
                    "due_at": "2099-01-15"})
            .to_string(),
        ),
    );
    assert_eq!(st, 201, "{v}");
    v["next_reminder_at"].as_str().unwrap().to_owned()
}

#[test]
fn sighup_reloads_a_valid_policy_and_keeps_the_old_one_when_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    write(&policy, &hup_policy("-3d"));
    let port = free_port();
    let config = format!(
        r#"
listen = "127.0.0.1:{port}"
data_dir = "data"
policy = "policy.toml"
[routes]
email = "outbox"
[channels.outbox]
type = "outbox"
dir = "outbox"
"#
    );
    let mut d = Daemon::start(dir.path(), &config, port);
    let (st, v) = d.api(
        "PUT",
        "/v1/clients/cli-1",
        Some(r#"{"name": "Ana", "email": "ana@example.co"}"#),
    );
    assert_eq!(st, 201, "{v}");
    // 2099-01-15 - 3d at 09:00 Bogota.
    assert_eq!(put_invoice(&d, "inv-1"), "2099-01-12T14:00:00Z");

    // An invalid policy: refused, the old one stays in force.
    write(&policy, &hup_policy("-7x"));
    hup(&d);
    wait_log(&d, "NOT reloaded", 1);
    assert!(d.log_text().contains("-7x"), "{}", d.log_text());
    assert!(d.child.try_wait().unwrap().is_none(), "daemon exited");
    assert_eq!(put_invoice(&d, "inv-2"), "2099-01-12T14:00:00Z");

    // A valid changed policy: the new cadence applies to new invoices.
    write(&policy, &hup_policy("-7d"));
    hup(&d);
    wait_log(&d, "policy reloaded", 1);
    assert_eq!(put_invoice(&d, "inv-3"), "2099-01-08T14:00:00Z");
    assert_eq!(d.terminate(), Some(0));
}

/// Runs `plazo check` on `dir/plazo.toml`, which must pass (warnings are not errors), and
/// returns what it printed.
fn check_passes_with_warnings(dir: &std::path::Path) -> String {
    let out = plazo(&[
        "check",
        "--config",
        dir.join("plazo.toml").to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "a warning is not an error: {stdout}");
    stdout
}

#[test]
fn check_warns_when_an_sms_text_needs_more_segments_than_allowed() {
    let dir = config_copy();
    let short = dir.path().join("templates/es/firm_overdue.short.txt");
    // 300 characters with an "á": UCS-2, 67 characters per segment → 5 segments.
    std::fs::write(&short, format!("{} á", "x".repeat(300))).unwrap();
    let stdout = check_passes_with_warnings(dir.path());
    assert!(
        stdout.contains("template \"firm_overdue\" (es) used for SMS by cadence close_follow_up renders to 5 UCS-2 segments"),
        "{stdout}"
    );
    assert!(stdout.contains("GSM-7"), "{stdout}");
}

#[test]
fn check_warns_when_a_text_line_loses_its_line_break() {
    let dir = config_copy();
    let statement = dir.path().join("templates/en/_statement.txt");
    let source = std::fs::read_to_string(&statement).unwrap();
    assert!(source.contains("{% endif +%}"), "{source}");
    // The statement item as it was shipped before: the break after `{% endif %}` is trimmed.
    std::fs::write(&statement, source.replace("{% endif +%}", "{% endif %}")).unwrap();
    let stdout = check_passes_with_warnings(dir.path());
    assert!(
        stdout.contains("templates/en/_statement.txt:5: this line ends with a block tag"),
        "{stdout}"
    );
    assert!(stdout.contains("`{% endif +%}`"), "{stdout}");
    assert_eq!(
        stdout.matches("removes its line break").count(),
        1,
        "only the changed line: {stdout}"
    );
}

// ---------------------------------------------------------------------------------------------
// `plazo check` and a reload agree; config errors name file:line:column.

/// Runs `plazo check` on `dir/plazo.toml`: (success, stdout + stderr).
fn check_dir(dir: &Path) -> (bool, String) {
    let out = plazo(&[
        "check",
        "--config",
        dir.join("plazo.toml").to_str().unwrap(),
    ]);
    (
        out.status.success(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

#[test]
fn check_and_reload_accept_and_reject_the_same_policies() {
    use plazo::daemon::reload_policy_into;
    use plazo::policy::load_checked_policy;
    use plazo::service::PolicyHandle;
    // (file under config/, from, to): each edit of the shipped files must be refused.
    let cases: &[(&str, &str, &str)] = &[
        (
            "templates/es/courtesy.txt",
            "{{ client.name }}",
            "{{ client.nmae }}",
        ),
        (
            "templates/es/due_today.subject.txt",
            "{{ invoice.number }}",
            "{{ invoice.numbr }}",
        ),
        (
            "templates/es/courtesy.txt",
            "{{ client.name }}",
            "{{ client.name | nosuchfilter }}",
        ),
        (
            "templates/en/courtesy.txt",
            "{{ client.name }}",
            "{{ client.name ",
        ),
        (
            "templates/es/courtesy.txt",
            "{% include \"es/_summary.txt\" %}",
            "{% include \"es/_nope.txt\" %}",
        ),
        ("policy.toml", "offset = \"+3d\"", "offset = \"+3x\""),
        ("policy.toml", "from = \"07:00\"", "from = \"7 am\""),
        (
            "policy.toml",
            "timezone = \"America/Bogota\"",
            "timezone = \"Mars/Olympus\"",
        ),
        (
            "policy.toml",
            "default_segment = \"standard\"",
            "default_segment = \"nope\"",
        ),
    ];
    for (file, from, to) in cases {
        let dir = config_copy();
        let policy = dir.path().join("policy.toml");
        let config = plazo::config::load_daemon_config(&dir.path().join("plazo.toml")).unwrap();
        let handle = PolicyHandle::new(load_checked_policy(&policy).unwrap());
        let before = handle.current();
        edit_once(&dir.path().join(file), from, to);
        let (check_ok, report) = check_dir(dir.path());
        let reload = reload_policy_into(&handle, &config);
        assert!(!check_ok, "check accepted {file}: {to}\n{report}");
        let err = reload.expect_err(&format!("reload accepted {file}: {to}"));
        assert!(std::sync::Arc::ptr_eq(&before, &handle.current()));
        // Both name the same file and line.
        let msg = err.to_string();
        let named = format!("{}:", dir.path().join(file).display());
        assert!(msg.contains(&named), "{file}: {msg}");
        assert!(report.contains(&named), "{file}: {report}");
    }
    // And the shipped files pass both.
    let dir = config_copy();
    let config = plazo::config::load_daemon_config(&dir.path().join("plazo.toml")).unwrap();
    let handle = PolicyHandle::new(load_checked_policy(&dir.path().join("policy.toml")).unwrap());
    assert!(check_dir(dir.path()).0);
    reload_policy_into(&handle, &config).unwrap();
}

#[test]
fn check_names_file_line_and_column_of_every_config_error() {
    // (from, to, expected "line:col: field" after the file name, words of the message).
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "email = \"outbox\"",
            "email = \"smtp\"",
            "routes.email",
            "is not defined",
        ),
        (
            "concurrency = 64",
            "concurrency = 0",
            "dispatch.concurrency",
            "out of range",
        ),
        (
            "batch = 512",
            "batch = 100000000",
            "dispatch.batch",
            "out of range",
        ),
        (
            "daily_digest = \"0 0 7 * * *\"",
            "daily_digest = \"at seven\"",
            "housekeeping.daily_digest",
            "not a cron expression",
        ),
        (
            "# public_url = \"https://cobros.example.co\"",
            "public_url = \"cobros.example.co\"",
            "public_url",
            "http:// or https://",
        ),
        (
            "base_url = \"https://api.mercadopago.com\"",
            "base_url = \"ftp://x\"",
            "mercadopago.base_url",
            "http:// or https://",
        ),
        (
            "policy = \"policy.toml\"",
            "policy = \"missing.toml\"",
            "policy",
            "does not exist",
        ),
        (
            "level = \"info\"",
            "level = \"loud\"",
            "log.level",
            "trace, debug, info, warn, error, off",
        ),
        (
            "level = \"info\"",
            "level = \"\"",
            "log.level",
            "trace, debug, info, warn, error, off",
        ),
        (
            "dir = \"outbox\"",
            "dir = \"/tmp/plazo-outbox\"",
            "channels.outbox.dir",
            "outside the data directory",
        ),
        (
            "retention_days = 30",
            "retention_days = 0",
            "payment_webhooks.retention_days",
            "out of range",
        ),
    ];
    for (from, to, field, words) in cases {
        let dir = config_copy();
        let config = dir.path().join("plazo.toml");
        let line = edit_once(&config, from, to);
        let col = std::fs::read_to_string(&config)
            .unwrap()
            .lines()
            .nth(line - 1)
            .unwrap()
            .find(" = ")
            .unwrap()
            + 4;
        let (ok, report) = check_dir(dir.path());
        assert!(!ok, "{to}: {report}");
        let want = format!("{}:{line}:{col}: {field}: ", config.display());
        assert!(report.contains(&want), "want {want:?} in:\n{report}");
        assert!(report.contains(words), "{to}: {report}");
    }
}

#[test]
fn check_refuses_an_empty_config() {
    let dir = config_copy();
    let config = dir.path().join("plazo.toml");
    std::fs::write(&config, "# nothing here yet\n").unwrap();
    let (ok, report) = check_dir(dir.path());
    assert!(!ok, "{report}");
    assert!(
        report.contains(&format!(
            "{}:1:1: file: the config file is empty",
            config.display()
        )),
        "{report}"
    );
}

/// Channels whose build fails on one key: (the key's line in the appended text, the message
/// that follows `file:line:col: `).
fn bad_channels(dir: &Path) -> (String, Vec<(&'static str, &'static str)>) {
    let token = dir.join("twilio-token");
    common::write_private(&token, "0123456789abcdef0123456789abcdef\n");
    let text = format!(
        "\n[channels.crm]\ntype = \"webhook\"\nurl = \"not a url\"\n\
         \n[channels.tw]\ntype = \"twilio\"\naccount_sid = \"AC0123456789abcdef0123456789abcdef\"\n\
         auth_token_file = {:?}\nfrom = \"+15005550006\"\nbase_url = \"ftp://twilio.example\"\n\
         \n[channels.wa]\ntype = \"whatsapp\"\nphone_number_id = \"106540352242922\"\n\
         access_token_file = {:?}\nbase_url = \"not a url\"\n\
         \n[channels.mail]\ntype = \"smtp\"\nhost = \"smtp.example.co\"\nfrom = \"not an address\"\n",
        token.display().to_string(),
        token.display().to_string(),
    );
    let keys = vec![
        ("url = \"not a url\"", "channel 'crm': url: "),
        (
            "base_url = \"ftp://twilio.example\"",
            "channel 'tw': base_url: ",
        ),
        ("base_url = \"not a url\"", "channel 'wa': base_url: "),
        ("from = \"not an address\"", "channel 'mail': from: "),
    ];
    (text, keys)
}

/// `file:line:col` of the value of the line `key_line` in `text` (appended to `config`).
fn value_at(config: &Path, text: &str, key_line: &str) -> String {
    let line = text.lines().position(|l| l == key_line).unwrap() + 1;
    let col = key_line.find(" = ").unwrap() + 4;
    format!("{}:{line}:{col}", config.display())
}

#[test]
fn check_names_the_line_and_column_of_the_channel_key_that_is_wrong() {
    let dir = config_copy();
    let config = dir.path().join("plazo.toml");
    let (extra, keys) = bad_channels(dir.path());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&extra);
    std::fs::write(&config, &text).unwrap();
    let (ok, report) = check_dir(dir.path());
    assert!(!ok, "{report}");
    for (key_line, message) in keys {
        let want = format!("{}: {message}", value_at(&config, &text, key_line));
        assert!(report.contains(&want), "want {want:?} in:\n{report}");
    }
}

#[test]
fn serve_names_the_line_and_column_of_the_channel_key_that_is_wrong() {
    for (route, channel) in [
        ("webhook", "crm"),
        ("sms", "tw"),
        ("whatsapp", "wa"),
        ("email", "mail"),
    ] {
        let dir = served_config();
        let config = dir.path().join("plazo.toml");
        edit_once(
            &config,
            &format!("{route} = \"outbox\""),
            &format!("{route} = \"{channel}\""),
        );
        let (extra, keys) = bad_channels(dir.path());
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&extra);
        std::fs::write(&config, &text).unwrap();
        let mut child = serve(dir.path());
        let status = child.wait().unwrap();
        let log = serve_log(dir.path());
        assert!(!status.success(), "{channel}: serve started:\n{log}");
        let (key_line, message) = keys
            .iter()
            .find(|(_, m)| m.contains(&format!("'{channel}'")))
            .unwrap();
        // serve was given `--config plazo.toml`: the file as given.
        let want = format!(
            "{}: {message}",
            value_at(Path::new("plazo.toml"), &text, key_line)
        );
        assert!(log.contains(&want), "want {want:?} in:\n{log}");
    }
}

// ---------------------------------------------------------------------------------------------
// The served daemon: private files, plain logs, SIGHUP with a template check rejects.

/// `plazo serve` on `dir/plazo.toml` (cwd `dir`, API on port 0, no token in the environment),
/// stderr to `dir/serve.log`.
fn serve(dir: &Path) -> std::process::Child {
    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_plazo"))
        .args(["serve", "--config", "plazo.toml"])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("PLAZO_API_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn serve_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
}

/// Waits until the log holds `needle` `count` times.
fn wait_serve_log(dir: &Path, needle: &str, count: usize) {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if serve_log(dir).matches(needle).count() >= count {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("log never said {needle:?}:\n{}", serve_log(dir));
}

fn signal(child: &std::process::Child, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

fn stop(mut child: std::process::Child) {
    signal(&child, "TERM");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// The shipped config on port 0.
fn served_config() -> tempfile::TempDir {
    let dir = config_copy();
    edit_once(
        &dir.path().join("plazo.toml"),
        "listen = \"127.0.0.1:8080\"",
        "listen = \"127.0.0.1:0\"",
    );
    dir
}

#[cfg(unix)]
#[test]
fn serve_keeps_its_files_private_and_refuses_a_token_file_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = served_config();
    let child = serve(dir.path());
    wait_serve_log(dir.path(), "plazo ready", 1);
    let data = dir.path().join("data");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "data dir");
    assert_eq!(mode(&data.join("api-token")), 0o600, "api-token");
    stop(child);
    let mut seen = 0;
    let mut stack = vec![data.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            assert_eq!(mode(&p) & 0o077, 0, "{} is {:o}", p.display(), mode(&p));
            seen += 1;
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    assert!(seen >= 4, "db, its files, api-token, outbox: {seen}");

    // A token file others can read: refused, with the fix.
    let token = data.join("api-token");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut child = serve(dir.path());
    let status = child.wait().unwrap();
    assert!(!status.success());
    let log = serve_log(dir.path());
    // Paths as the daemon sees them: relative to its working directory.
    assert!(log.contains("chmod 600 data/api-token"), "{log}");
}

#[test]
fn logs_have_no_colour_codes_when_not_on_a_terminal() {
    let dir = served_config();
    let child = serve(dir.path());
    wait_serve_log(dir.path(), "plazo ready", 1);
    stop(child);
    let log = serve_log(dir.path());
    assert!(log.contains("INFO"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape in a log file:\n{log:?}"
    );
}

#[test]
fn sighup_with_a_template_check_rejects_keeps_the_old_policy_and_says_where() {
    let dir = served_config();
    let child = serve(dir.path());
    wait_serve_log(dir.path(), "plazo ready", 1);
    let tpl = dir.path().join("templates/es/courtesy.txt");
    edit_once(&tpl, "{{ client.name }}", "{{ client.nmae }}");
    signal(&child, "HUP");
    wait_serve_log(dir.path(), "NOT reloaded", 1);
    let log = serve_log(dir.path());
    // file:line:column of `client.nmae`, relative to the daemon's working directory.
    assert!(log.contains("templates/es/courtesy.txt:1:14: "), "{log}");
    assert!(log.contains("client.nmae"), "{log}");
    assert!(!log.contains("policy reloaded"), "{log}");
    // Fixed: the next SIGHUP reloads.
    edit_once(&tpl, "{{ client.nmae }}", "{{ client.name }}");
    signal(&child, "HUP");
    wait_serve_log(dir.path(), "policy reloaded", 1);
    stop(child);
}

#[test]
fn serve_refuses_to_start_on_a_template_check_rejects() {
    let dir = served_config();
    let tpl = dir.path().join("templates/es/courtesy.txt");
    edit_once(&tpl, "{{ client.name }}", "{{ client.nmae }}");
    let mut child = serve(dir.path());
    assert!(!child.wait().unwrap().success());
    let log = serve_log(dir.path());
    assert!(log.contains("templates/es/courtesy.txt:1:14: "), "{log}");
    assert!(!dir.path().join("data").exists(), "nothing written: {log}");
}

/// `Type=notify`: with systemd's `NOTIFY_SOCKET` and `WATCHDOG_USEC`, `plazo serve` says
/// READY once it serves, pings the watchdog from the dispatcher loop at least twice per
/// period, and says STOPPING on SIGTERM.
#[cfg(unix)]
#[test]
fn serve_speaks_systemds_notify_protocol_with_a_watchdog() {
    use std::os::unix::net::UnixDatagram;
    let dir = served_config();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_plazo"))
        .args(["serve", "--config", "plazo.toml"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env_remove("PLAZO_API_TOKEN")
        .env_remove("WATCHDOG_PID")
        .env("NOTIFY_SOCKET", &sock_path)
        // A 2 s watchdog: a ping at least every second.
        .env("WATCHDOG_USEC", "2000000")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut buf = [0u8; 512];
    let mut next = || {
        // A signal to this test process may cut the wait short (EINTR): wait again.
        let n = loop {
            match sock.recv(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r.expect("a notification"),
            }
        };
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    // The dispatcher may ping before start-up ends; READY comes once the API serves.
    let ready = loop {
        let m = next();
        if m != "WATCHDOG=1\n" {
            break m;
        }
    };
    assert!(
        ready.starts_with("READY=1\nSTATUS=serving on 127.0.0.1:"),
        "{ready:?}"
    );
    // Pings, each at least ~1 s apart (half the period).
    let t0 = Instant::now();
    let mut pings = 0;
    while pings < 3 {
        let m = next();
        assert_eq!(m, "WATCHDOG=1\n", "{m:?}");
        pings += 1;
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(1500),
        "three pings in {:?}: too often",
        t0.elapsed()
    );
    signal(&child, "TERM");
    let mut saw_stopping = false;
    for _ in 0..10 {
        let m = next();
        if m.starts_with("STOPPING=1") {
            saw_stopping = true;
            break;
        }
        assert_eq!(m, "WATCHDOG=1\n", "{m:?}");
    }
    assert!(saw_stopping, "no STOPPING=1:\n{}", serve_log(dir.path()));
    let mut child = child;
    assert!(child.wait().unwrap().success());
}

/// `[store] backend = "postgres"` with a database nobody serves: `serve` and `migrate` fail at
/// once with a message naming PostgreSQL, and a non-zero status; a missing URL says which
/// variable to set.
#[test]
fn postgres_store_unreachable_or_unset_is_a_clear_error_at_start() {
    let dir = config_copy();
    let cfg = dir.path().join("plazo.toml");
    edit_once(
        &cfg,
        "cache_mib = 64\n",
        "cache_mib = 64\n[store]\nbackend = \"postgres\"\nnode = \"test-node\"\n",
    );
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgresql://plazo@127.0.0.1:{port}/none?connect_timeout=3");
    for cmd in ["serve", "migrate"] {
        let out = Command::new(env!("CARGO_BIN_EXE_plazo"))
            .args([cmd, "--config", cfg.to_str().unwrap()])
            .env_remove("RUST_LOG")
            .env("PLAZO_DATABASE_URL", &url)
            .env("PLAZO_API_TOKEN", "t0ken-for-the-test-0123456789abcdef")
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{cmd}: {stderr}");
        assert!(
            stderr.contains("cannot connect to PostgreSQL"),
            "{cmd}: {stderr}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_plazo"))
        .args(["migrate", "--config", cfg.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .env_remove("PLAZO_DATABASE_URL")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("PLAZO_DATABASE_URL"), "{stderr}");
}
