//! `plazo check`: the daemon config, the policy and every template checked exactly as a start
//! and a reload check them, with a summary of what is in force and warnings about messaging
//! (SMS length, receipts without a public URL...).

use anyhow::{Result, bail};
use plazo::config::load_daemon_config;
use plazo::daemon::load_policy_for;
use plazo::policy::PolicyError;

pub fn check(path: &std::path::Path, out: &mut String) -> Result<()> {
    let config = load_daemon_config(path)?;
    // Exactly what a reload (SIGHUP) runs, so the two always agree.
    let loaded = match load_policy_for(&config) {
        Ok(loaded) => loaded,
        Err(PolicyError::TemplateChecks(problems)) => {
            for pr in &problems {
                say!(out, "template error {pr}");
            }
            bail!("{} template problem(s)", problems.len())
        }
        Err(e) => return Err(e.into()),
    };
    let p = &loaded.policy;
    say!(
        out,
        "daemon config  {}: ok (listen {}, data {})",
        path.display(),
        config.listen,
        config.data_dir.display()
    );
    say!(out, "policy         {}: ok", config.policy_path().display());
    say!(
        out,
        "  defaults     zone {}, locale {}, currency {}",
        p.defaults.timezone_name,
        p.defaults.locale,
        p.defaults.currency
    );
    let steps_of = |cadence: &str| -> String {
        p.cadences
            .get(cadence)
            .map(|c| {
                let mut steps = c
                    .steps
                    .iter()
                    .map(|s| match &s.action {
                        plazo::policy::StepAction::Remind => format!("{} {}", s.name, s.offset),
                        action => format!("{} {} ({action})", s.name, s.offset),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                if c.on_exhausted != plazo::policy::OnExhausted::Nothing {
                    steps.push_str(&format!("; then {}", c.on_exhausted));
                }
                steps
            })
            .unwrap_or_default()
    };
    if let Some(ev) = &config.events {
        let types = ev
            .types
            .as_ref()
            .map_or_else(|| "every type".to_owned(), |t| t.join(", "));
        let partners: Vec<&str> = ev.partners.keys().map(String::as_str).collect();
        say!(
            out,
            "  events       to {} ({types}); hand-offs also to {}",
            ev.url,
            if partners.is_empty() {
                "no partner endpoint".to_owned()
            } else {
                partners.join(", ")
            }
        );
    }
    for partner in p.partners.values() {
        say!(
            out,
            "  partner      {} ({}{})",
            partner.id,
            partner.name,
            partner
                .email
                .as_deref()
                .map(|e| format!(", {e}"))
                .unwrap_or_default()
        );
    }
    if let Some(days) = p.write_off_after_days {
        say!(
            out,
            "  write-off    unpaid invoices {days} days past due, by the daily pass"
        );
    }
    for (name, seg) in &p.segments {
        say!(
            out,
            "  segment      {name} -> cadence {} [{}]{}",
            seg.cadence,
            steps_of(&seg.cadence),
            if seg.group_by_client
                || p.cadences
                    .get(&seg.cadence)
                    .is_some_and(|c| c.group_by_client)
            {
                ", one message a day per client"
            } else {
                ""
            }
        );
        if let Some(rule) = p.rules.rule_of(name) {
            say!(out, "    when       {rule}");
        }
    }
    if !p.rules.is_empty() {
        let order: Vec<&str> = p.rules.order().collect();
        say!(
            out,
            "  rules        tried in order {}; then tags, then default {} (a client's own segment overrides all); facts over the last {} paid invoices",
            order.join(", "),
            p.default_segment,
            p.facts.last_paid
        );
    }
    let c = &p.compliance;
    match c.apply {
        plazo::compliance::rules::Apply::ByCountry => say!(
            out,
            "  compliance   presets by client country{}{}: {}",
            c.default_country
                .as_deref()
                .map_or(String::new(), |d| format!(" (clients without one: {d})")),
            if c.always.is_empty() {
                String::new()
            } else {
                format!(", always {}", c.always.join(", "))
            },
            c.presets
                .values()
                .map(|p| format!("{} ({})", p.name, p.country))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        plazo::compliance::rules::Apply::Off if c.always.is_empty() => say!(
            out,
            "  compliance   off: no contact-law preset applies (add [compliance] apply = \"by_country\")"
        ),
        plazo::compliance::rules::Apply::Off => {
            say!(out, "  compliance   always {}", c.always.join(", "))
        }
    }
    let a = &p.arrangements;
    let cadence_line = |c: &Option<String>| match c {
        Some(c) => format!("cadence {c} [{}]", steps_of(c)),
        None => "no reminders".to_owned(),
    };
    say!(
        out,
        "  promises     {}, grace {}, broken -> {}, up to {} days ahead",
        cadence_line(&a.promise_cadence),
        a.promise_grace,
        a.broken_cadence
            .as_ref()
            .map_or("regular cadence at once".to_owned(), |c| format!(
                "cadence {c} [{}]",
                steps_of(c)
            )),
        a.promise_max_days
    );
    say!(
        out,
        "  plans        {}, grace {}, up to {} instalments over {} days",
        cadence_line(&a.plan_cadence),
        a.plan_grace,
        a.plan_max_instalments,
        a.plan_max_days
    );
    say!(
        out,
        "  anchor       {}",
        match p.terms.anchor {
            plazo::policy::terms::CadenceAnchor::DueDate => "cadence counts from the due date",
            plazo::policy::terms::CadenceAnchor::LastPayment =>
                "cadence moves later after each partial payment (last_payment)",
        }
    );
    let mut ctx = plazo::channels::BuildContext::from_process_env(config.data_dir.clone());
    ctx.public_url = config.configured_public_url();
    let mut channel_errors = 0;
    for (name, channel) in &config.channels {
        match channel.build(name, &ctx) {
            Ok(_) => say!(out, "  channel      {name} ({}): ok", channel.adapter()),
            Err(e) => {
                channel_errors += 1;
                say!(
                    out,
                    "  channel      {name} ({}): ERROR {}: {e}",
                    channel.adapter(),
                    plazo::daemon::channel_error_at(&config, &e)
                );
            }
        }
    }
    for (kind, channel) in &config.routes {
        say!(out, "  route        {kind} -> {channel}");
    }
    let kinds_used: std::collections::BTreeSet<&str> = p
        .cadences
        .values()
        .flat_map(|c| c.steps.iter())
        .flat_map(|s| s.channels.iter().map(String::as_str))
        .collect();
    for kind in kinds_used {
        if !config.routes.contains_key(kind) {
            say!(
                out,
                "  warning      the policy uses channel kind {kind:?} but [routes] has no entry for it"
            );
        }
    }
    for warning in plazo::compliance::check::window_warnings(&loaded.policy) {
        say!(out, "  warning      {warning}");
    }
    for warning in messaging_warnings(&config, &loaded) {
        say!(out, "  warning      {warning}");
    }
    for warning in loaded.templates.line_break_warnings() {
        say!(out, "  warning      {warning}");
    }
    if channel_errors > 0 {
        bail!("{channel_errors} channel(s) cannot be built");
    }
    say!(out, "templates      ok");
    Ok(())
}

/// Warnings about SMS length and receipts: never fatal, but worth an operator's eye.
fn messaging_warnings(
    config: &plazo::config::DaemonConfig,
    loaded: &plazo::policy::LoadedPolicy,
) -> Vec<String> {
    let p = &loaded.policy;
    let mut out = Vec::new();
    let max_segments = p
        .channels
        .get("sms")
        .map_or(plazo::policy::model::DEFAULT_MAX_SEGMENTS, |c| {
            c.max_segments
        });
    let mut seen = std::collections::BTreeSet::new();
    for (cname, cadence) in &p.cadences {
        for step in &cadence.steps {
            if step.channels.iter().any(|c| c == "sms") && seen.insert(step.template.clone()) {
                let worst = loaded
                    .templates
                    .sample_texts(&step.template, &p.company)
                    .into_iter()
                    .map(|(locale, text)| (locale, plazo::channels::twilio::sms_segments(&text)))
                    .max_by_key(|(_, s)| s.segments);
                if let Some((locale, s)) = worst {
                    if s.segments > max_segments as usize {
                        out.push(format!(
                            "template {:?} ({locale}) used for SMS by cadence {cname} renders to {} {} segments ({} units); the limit is {max_segments} ([channels.sms] max_segments): shorten it{}",
                            step.template,
                            s.segments,
                            s.encoding.as_str(),
                            s.units,
                            if matches!(s.encoding, plazo::channels::twilio::SmsEncoding::Ucs2) {
                                ", or avoid characters outside GSM-7 such as á, í, ó, ú, which make every segment 70 characters instead of 160"
                            } else {
                                ""
                            }
                        ));
                    }
                }
            }
            if step.channels.iter().any(|c| c == "whatsapp") && step.whatsapp.is_none() {
                out.push(format!(
                    "step {} of cadence {cname} uses whatsapp without a template mapping: it can only reach debtors who wrote in the last 24 hours",
                    step.name
                ));
            }
        }
    }
    if p.channels
        .get("sms")
        .and_then(|c| c.receipt_timeout)
        .is_some()
    {
        let twilio_route = config
            .routes
            .get("sms")
            .and_then(|name| config.channels.get(name))
            .is_some_and(|c| c.adapter() == "twilio");
        if twilio_route && config.public_url.is_none() {
            out.push("[channels.sms] receipt_timeout is set but the daemon has no public_url, so Twilio gets no StatusCallback and no receipts: steps never wait; set public_url".to_owned());
        }
    }
    out
}
