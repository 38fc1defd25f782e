//! The `plazo` binary: parses the command line and hands over to the library.

mod import_cli;
mod remote_cli;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;

use plazo::cli::{Cli, Command};
use plazo::clock::{Clock, SystemClock};
use plazo::config::{DaemonConfig, LogFormat, load_daemon_config};
use plazo::domain::{ClientId, InvoiceId};
use plazo::policy::load_policy;
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
        Command::Check { config } => with_output(|out| check_cli::check(&config, out)),
        Command::Migrate { config } => with_output(|out| migrate(out, &config)),
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

// After `say!`, which it uses.
mod check_cli;

/// `plazo migrate`: brings the configured store to this build's schema.
fn migrate(out: &mut String, config: &std::path::Path) -> Result<()> {
    use plazo::config::StoreBackend;
    let cfg = load_daemon_config(config)?;
    match cfg.store.backend {
        StoreBackend::Postgres => {
            let env = |k: &str| std::env::var(k).ok();
            let url = plazo::daemon::open_store::database_url(&cfg, &env)?;
            let version = plazo::store::PgBackend::migrate(&url)
                .context("migrating the PostgreSQL database")?;
            say!(out, "postgres: schema at version {version}");
        }
        StoreBackend::Sled => {
            let dir = cfg.data_dir.join("db");
            let store = plazo::store::Store::open(&dir, plazo::store::StoreOptions::default())
                .with_context(|| format!("opening {}", dir.display()))?;
            store.close().context("closing the store")?;
            say!(
                out,
                "sled: {} at schema version {}",
                dir.display(),
                plazo::store::SCHEMA_VERSION
            );
        }
    }
    Ok(())
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
    let served = rt.block_on(async move {
        let mut signals = Signals::install()?;
        // A standby waits inside `start` until it leads (sending queued messages meanwhile): a
        // signal then stops it cleanly, its worker finishing the sends it holds.
        let running = tokio::select! {
            started = plazo::daemon::start(config, Arc::new(SystemClock)) => started?,
            signal = signals.stop() => {
                tracing::info!("{signal} while waiting to lead the database: stopping");
                return Ok(());
            }
        };
        plazo::systemd::ready(&format!("serving on {}", running.addr));
        signals.serve(&running).await;
        plazo::systemd::stopping();
        running.shutdown().await?;
        Ok(())
    });
    // A standby stopped while waiting to lead leaves that wait on a blocking thread.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    served
}

/// The signals `plazo serve` handles, installed before it starts (a standby waits there).
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn install() -> Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
            hup: signal(SignalKind::hangup()).context("installing SIGHUP handler")?,
        })
    }

    #[cfg(not(unix))]
    fn install() -> Result<Signals> {
        Ok(Signals {})
    }

    /// Waits for SIGTERM or SIGINT and names it.
    #[cfg(unix)]
    async fn stop(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }

    #[cfg(not(unix))]
    async fn stop(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }

    /// Serves until SIGTERM or SIGINT, reloading the policy on SIGHUP.
    #[cfg(unix)]
    async fn serve(&mut self, running: &plazo::daemon::Running) {
        loop {
            tokio::select! {
                _ = self.term.recv() => { tracing::info!("SIGTERM: shutting down"); return; }
                _ = self.int.recv() => { tracing::info!("SIGINT: shutting down"); return; }
                _ = self.hup.recv() => match running.reload_policy() {
                    Ok(()) => tracing::info!("SIGHUP: policy reloaded"),
                    Err(e) => tracing::error!(error = %e, "SIGHUP: policy NOT reloaded; the previous policy stays in force"),
                },
            }
        }
    }

    #[cfg(not(unix))]
    async fn serve(&mut self, _running: &plazo::daemon::Running) {
        let signal = self.stop().await;
        tracing::info!("{signal}: shutting down");
    }
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
