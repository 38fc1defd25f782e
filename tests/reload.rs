//! A policy reload runs exactly the validation of `plazo check`: a template that only fails
//! when rendered (an undefined variable) is refused, the policy in force stays, and the error
//! names the file, line and column.

#![allow(clippy::unwrap_used, clippy::panic)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

mod common;

use std::path::Path;

use common::config_copy;

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
    let err = reload_policy_into(&handle, &policy).unwrap_err();
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
    reload_policy_into(&handle, &policy).unwrap();
    assert_eq!(handle.current().policy.company.name, "Otra");
}
