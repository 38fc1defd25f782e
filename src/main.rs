//! The `plazo` binary: parses the command line and hands over to the library.

mod import_cli;
mod remote_cli;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Parser;

use plazo::cli::{Cli, Command};
use plazo::clock::{Clock, SystemClock};
use plazo::config::{DaemonConfig, LogFormat, load_daemon_config};
use plazo::domain::{ClientId, InvoiceId};
use plazo::policy::{PolicyError, load_checked_policy, load_policy};
use plazo::schedule::{PlannedStatus, plan};
use plazo::service::{draft_client, draft_invoice};

/// mimalloc instead of the system allocator: the store's writer and the dispatcher make many
/// small, short-lived allocations, and glibc's malloc was about 12 % of a dispatch burst (see
/// BENCHMARKS.md, issue 10).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config, json_logs } => serve(&config, json_logs),
        Command::Check { config } => with_output(|out| check(&config, out)),
        Command::Plan {
            config,
            invoice,
            client,
            now,
        } => with_output(|out| plan_cmd(out, &config, &invoice, client.as_deref(), now)),
        Command::Simulate {
            config,
            policy,
            days,
            json,
        } => with_output(|out| remote_cli::simulate(out, &config, policy.as_deref(), days, json)),
        Command::Import {
            config,
            files,
            clients,
            invoices,
        } => import_cli::run(&config, &files, &clients, &invoices),
        Command::Report {
            config,
            out,
            format,
            as_of,
            from,
            to,
            currency,
            segment,
        } => remote_cli::report(
            &config,
            &out,
            format,
            plazo::service::reports::ReportQuery {
                as_of,
                currency,
                segment,
                from,
                to,
            },
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Appends a line to a report.
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

/// Runs a command that writes a report, then prints the report (even when the command
/// failed half-way), ignoring a closed pipe (`plazo plan ... | head`).
fn with_output(f: impl FnOnce(&mut String) -> Result<()>) -> Result<()> {
    use std::io::Write as _;
    let mut out = String::new();
    let result = f(&mut out);
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => result,
    }
}

/// Logs to stderr, filtered by `RUST_LOG` when it is set and valid, else by `[log] level`
/// (already checked at load). Colour codes only when stderr is a terminal, so files, pipes and
/// journald get plain text.
fn init_tracing(cfg: &DaemonConfig, json: bool) {
    use std::io::IsTerminal as _;
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let bad_env = from_env
        .as_deref()
        .and_then(|v| plazo::config::check_log_filter(v).err());
    let level = match (&from_env, &bad_env) {
        (Some(v), None) => v.as_str(),
        _ => cfg.log.level.as_str(),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json || cfg.log.format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
    if let Some(problem) = bad_env {
        tracing::warn!("RUST_LOG ignored, [log] level applies: {problem}");
    }
}

/// Everything `plazo serve` writes (database, generated secrets, outbox files) is private to
/// its user: umask 0077, as `UMask=0077` does under systemd (the daemon creates its data
/// directory 0700 itself).
fn make_files_private() {
    #[cfg(unix)]
    {
        use rustix::fs::Mode;
        rustix::process::umask(Mode::from_bits_truncate(0o077));
    }
}

fn serve(path: &std::path::Path, json_logs: bool) -> Result<()> {
    let config = load_daemon_config(path)?;
    init_tracing(&config, json_logs);
    make_files_private();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let running = plazo::daemon::start(config, Arc::new(SystemClock)).await?;
        plazo::systemd::ready(&format!("serving on {}", running.addr));
        wait_for_signals(&running).await?;
        plazo::systemd::stopping();
        running.shutdown().await?;
        Ok(())
    })
}

#[cfg(unix)]
async fn wait_for_signals(running: &plazo::daemon::Running) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); return Ok(()); }
            _ = int.recv() => { tracing::info!("SIGINT: shutting down"); return Ok(()); }
            _ = hup.recv() => match running.reload_policy() {
                Ok(()) => tracing::info!("SIGHUP: policy reloaded"),
                Err(e) => tracing::error!(error = %e, "SIGHUP: policy NOT reloaded; the previous policy stays in force"),
            },
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signals(_running: &plazo::daemon::Running) -> Result<()> {
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}

fn check(path: &std::path::Path, out: &mut String) -> Result<()> {
    let config = load_daemon_config(path)?;
    // Exactly what a reload (SIGHUP) runs, so the two always agree.
    let loaded = match load_checked_policy(&config.policy_path()) {
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
    if let Some(name) = config
        .events
        .as_ref()
        .and_then(|ev| ev.unknown_partner(|n| p.partners.contains_key(n)))
    {
        bail!(
            "{}: events.partners.{name}: the policy has no [partners.{name}]; name a partner of the policy (or add it there)",
            config.location_of(&["events", "partners", name])
        );
    }
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
                    config.location_of(&["channels", name])
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

/// Splits `"id"` off a JSON object; the rest is an API body.
fn split_id(text: &str, default_id: &str) -> Result<(String, serde_json::Value)> {
    let mut value: serde_json::Value = serde_json::from_str(text)?;
    let id = value
        .as_object_mut()
        .and_then(|o| o.remove("id"))
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| default_id.to_owned());
    Ok((id, value))
}

fn plan_cmd(
    out: &mut String,
    path: &std::path::Path,
    invoice: &std::path::Path,
    client: Option<&std::path::Path>,
    now: Option<jiff::Timestamp>,
) -> Result<()> {
    let config = load_daemon_config(path)?;
    let loaded = load_policy(&config.policy_path())?;
    let policy = &loaded.policy;
    let now = now.unwrap_or_else(|| SystemClock.now());
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
    };
    let client = match client {
        Some(cp) => {
            let (id, body) =
                split_id(&read(cp)?, "client").with_context(|| cp.display().to_string())?;
            let input = serde_json::from_value(body).with_context(|| cp.display().to_string())?;
            draft_client(&ClientId::new(id)?, input, policy, now)
                .with_context(|| cp.display().to_string())?
        }
        None => {
            let input = serde_json::from_value(serde_json::json!({ "name": "Client" }))?;
            draft_client(&ClientId::new("client")?, input, policy, now)?
        }
    };
    let (id, mut body) =
        split_id(&read(invoice)?, "invoice").with_context(|| invoice.display().to_string())?;
    if let Some(o) = body.as_object_mut() {
        o.entry("client_id")
            .or_insert_with(|| client.id.to_string().into());
        o.entry("number").or_insert_with(|| id.clone().into());
    }
    let input = serde_json::from_value(body).with_context(|| invoice.display().to_string())?;
    let inv = draft_invoice(&InvoiceId::new(id)?, input, now)
        .with_context(|| invoice.display().to_string())?;
    let p = plan(&inv, &client, policy, now);
    say!(
        out,
        "invoice {} due {} — segment {}, cadence {}, zone {}, now {}",
        inv.id,
        inv.due_at,
        p.segment,
        p.cadence,
        p.zone,
        now
    );
    say!(
        out,
        "{:<3} {:<18} {:<7} {:<22} {:<27} {:<22} status",
        "#",
        "step",
        "offset",
        "channels",
        "local time",
        "UTC"
    );
    for s in &p.steps {
        let policy_step = policy
            .cadences
            .get(&p.cadence)
            .and_then(|c| c.steps.get(s.index as usize));
        let offset = policy_step.map_or_else(String::new, |st| st.offset.to_string());
        // A step with an action sends nothing: show what it does instead of channels.
        let how = match policy_step.map(|st| &st.action) {
            Some(plazo::policy::StepAction::Remind) | None => s.channels.join(","),
            Some(action) => action.to_string(),
        };
        let status = match s.status {
            PlannedStatus::Deferred | PlannedStatus::CatchUp => format!(
                "{:?} (cadence time {}{})",
                s.status,
                s.nominal.strftime("%a %Y-%m-%d %H:%M %Z"),
                s.reason
                    .as_deref()
                    .map_or(String::new(), |r| format!("; {r}"))
            ),
            other => format!("{other:?}"),
        };
        say!(
            out,
            "{:<3} {:<18} {:<7} {:<22} {:<27} {:<22} {status}",
            s.index,
            s.step,
            offset,
            how,
            s.fire_at.strftime("%a %Y-%m-%d %H:%M %Z").to_string(),
            s.fire_at
                .timestamp()
                .strftime("%Y-%m-%dT%H:%MZ")
                .to_string(),
        );
    }
    // What else holds at send time: the presets' caps and grouping.
    let segment = plazo::schedule::segment_followed(policy, &client, &inv);
    let rules = plazo::compliance::rules::ContactRules::for_client(policy, &client, segment);
    say!(out, "");
    say!(out, "hours        {}", rules.week().describe());
    if !rules.presets().is_empty() {
        say!(out, "presets      {}", rules.presets().join(", "));
    }
    for (preset, cap) in rules.caps() {
        say!(
            out,
            "cap          {preset}: {} (checked at send time)",
            cap.describe()
        );
    }
    let grouped = segment.group_by_client
        || policy
            .cadences
            .get(&segment.cadence)
            .is_some_and(|c| c.group_by_client);
    if grouped {
        say!(
            out,
            "grouping     one message a day per client: reminders of this client due the same day go out in one message listing every open invoice"
        );
    }
    Ok(())
}
