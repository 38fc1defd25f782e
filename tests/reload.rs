//! A policy reload runs exactly the validation of `plazo check`: a template that only fails
//! when rendered (an undefined variable) is refused, the policy in force stays, and the error
//! names the file, line and column.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use std::path::Path;

use common::config_copy;

use plazo::config::load_daemon_config;
use plazo::daemon::reload_policy_into;
use plazo::policy::{PolicyError, load_checked_policy, load_policy};
use plazo::service::PolicyHandle;

fn replace_once(path: &Path, from: &str, to: &str) {
    let s = std::fs::read_to_string(path).unwrap();
    assert_eq!(s.matches(from).count(), 1, "{from:?} in {}", path.display());
    std::fs::write(path, s.replacen(from, to, 1)).unwrap();
}

#[test]
fn reload_refuses_an_undefined_template_variable_and_keeps_the_old_policy() {
    let dir = config_copy();
    let policy = dir.path().join("policy.toml");
    let config = load_daemon_config(&dir.path().join("plazo.toml")).unwrap();
    let handle = PolicyHandle::new(load_checked_policy(&policy).unwrap());
    let before = handle.current();

    // Line 1 of the template: "Buen día, {{ client.name }}:", misspelt.
    let tpl = dir.path().join("templates/es/courtesy.txt");
    replace_once(&tpl, "{{ client.name }}", "{{ client.nmae }}");
    // The change is also made to the company name, so a wrongly accepted reload is visible.
    replace_once(
        &policy,
        "name = \"Ferretería El Tornillo S.A.S.\"",
        "name = \"Otra\"",
    );

    // The file alone parses: this is exactly the class only rendering finds.
    assert!(load_policy(&policy).is_ok());
    let err = reload_policy_into(&handle, &config).unwrap_err();
    assert!(matches!(err, PolicyError::TemplateChecks(_)), "{err:?}");
    let msg = err.to_string();
    // file:line:column of `client.nmae` ("Buen día, {{ " is 13 characters).
    let at = format!("{}:1:14: ", tpl.display());
    assert!(msg.contains(&at), "{msg}");
    assert!(msg.contains("client.nmae"), "{msg}");
    assert!(msg.contains("available: client.{id, name"), "{msg}");
    assert!(std::sync::Arc::ptr_eq(&before, &handle.current()));
    assert_eq!(
        handle.current().policy.company.name,
        "Ferretería El Tornillo S.A.S."
    );

    // Fixed: the reload goes through.
    replace_once(&tpl, "{{ client.nmae }}", "{{ client.name }}");
    reload_policy_into(&handle, &config).unwrap();
    assert_eq!(handle.current().policy.company.name, "Otra");
}

/// `[events.partners.NAME]` in the daemon config must name a partner of the policy: start and
/// `plazo check` refuse a policy without it, so a reload (SIGHUP) must too, or the daemon would
/// run a policy it cannot restart with.
#[test]
fn reload_refuses_a_policy_without_a_partner_the_events_config_names_and_keeps_the_old_one() {
    let dir = config_copy();
    let policy = dir.path().join("policy.toml");
    let config_path = dir.path().join("plazo.toml");
    let mut text = std::fs::read_to_string(&config_path).unwrap();
    text.push_str(
        "\n[events]\nurl = \"https://erp.example.co/hooks\"\nsecret = { env = \"S\" }\n\
         [events.partners.juridico]\nurl = \"https://juridico.example\"\nsecret = { env = \"P\" }\n",
    );
    std::fs::write(&config_path, &text).unwrap();
    let config = load_daemon_config(&config_path).unwrap();
    let handle = PolicyHandle::new(load_checked_policy(&policy).unwrap());
    let before = handle.current();
    // The shipped policy has the partner: a reload of it goes through.
    reload_policy_into(&handle, &config).unwrap();
    let before_edit = handle.current();
    assert!(!std::sync::Arc::ptr_eq(&before, &before_edit));

    // Rename the partner to `abogados` (the policy alone stays valid) and the company, so a
    // wrongly accepted reload is visible.
    replace_once(&policy, "[partners.juridico]", "[partners.abogados]");
    replace_once(&policy, "\"hand_off:juridico\"", "\"hand_off:abogados\"");
    replace_once(
        &policy,
        "name = \"Ferretería El Tornillo S.A.S.\"",
        "name = \"Otra\"",
    );
    assert!(load_checked_policy(&policy).is_ok());

    let err = reload_policy_into(&handle, &config).unwrap_err();
    assert!(
        matches!(&err, PolicyError::UnknownPartner { name, .. } if name == "juridico"),
        "{err:?}"
    );
    let line = text
        .lines()
        .position(|l| l == "[events.partners.juridico]")
        .unwrap()
        + 1;
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{}:{line}:", config_path.display())),
        "{msg}"
    );
    assert!(
        msg.contains("events.partners.juridico: the policy has no [partners.juridico]"),
        "{msg}"
    );
    assert!(std::sync::Arc::ptr_eq(&before_edit, &handle.current()));
    assert_eq!(
        handle.current().policy.company.name,
        "Ferretería El Tornillo S.A.S."
    );

    // `plazo check` refuses the same files with the same message.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plazo"))
        .args(["check", "--config"])
        .arg(&config_path)
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{said}");
    assert!(said.contains(&msg), "{said}");
}
