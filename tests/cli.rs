//! The real `plazo` binary: `check`, `plan`, and SIGHUP policy reload of `serve`.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Daemon, free_port, repo, step, test_policy, write};
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

/// A copy of `config/` (daemon config, policy, templates) in a temp dir.
fn config_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("config"), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
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

/// `plazo plan` output rows by step name: (local time, UTC).
fn plan_rows(invoice: serde_json::Value, client: serde_json::Value) -> Vec<(String, String)> {
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
        .lines()
        .skip(2)
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
            "friendly_overdue 2026-03-23 09:00 -05",
            "firm_overdue 2026-03-30 09:00 -05",
            // +30d is Sunday 2026-04-19: the mon-fri window moves it to Monday 08:00.
            "final_notice 2026-04-20 08:00 -05",
        ]
    );
    assert_eq!(
        utc,
        [
            "courtesy 2026-03-17T14:00Z",
            "due_today 2026-03-20T13:30Z",
            "friendly_overdue 2026-03-23T14:00Z",
            "firm_overdue 2026-03-30T14:00Z",
            "final_notice 2026-04-20T13:00Z",
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

#[test]
fn check_warns_when_an_sms_text_needs_more_segments_than_allowed() {
    let dir = config_copy();
    let short = dir.path().join("templates/es/firm_overdue.short.txt");
    // 300 characters with an "á": UCS-2, 67 characters per segment → 5 segments.
    std::fs::write(&short, format!("{} á", "x".repeat(300))).unwrap();
    let out = plazo(&[
        "check",
        "--config",
        dir.path().join("plazo.toml").to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "a warning is not an error: {stdout}");
    assert!(
        stdout.contains("template \"firm_overdue\" (es) used for SMS by cadence close_follow_up renders to 5 UCS-2 segments"),
        "{stdout}"
    );
    assert!(stdout.contains("GSM-7"), "{stdout}");
}
