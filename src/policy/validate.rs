//! The one validation of a policy that both `plazo check` and a reload (SIGHUP) run, so that a
//! reload can never accept what `check` rejects: the policy file is parsed and checked
//! ([`load_policy`]), then every part of every template is rendered with sample data
//! ([`crate::templates::Templates::check_all`]), which finds undefined variables such as
//! `{{ client.nmae }}` that compile but fail at send time.

use std::path::Path;

use super::{LoadedPolicy, PolicyError, load_policy};

/// Loads the policy at `path` and renders all its templates with sample contexts. `Ok` only
/// when both pass; otherwise the first error of the file, or every template problem.
pub fn load_checked_policy(path: &Path) -> Result<LoadedPolicy, PolicyError> {
    let loaded = load_policy(path)?;
    let problems = loaded.templates.check_all(&loaded.policy.company);
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(PolicyError::TemplateChecks(problems))
    }
}
