//! The `plazo` binary: parses the command line and hands over to the library.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde::Deserialize;

use plazo::cli::{Cli, Command};
use plazo::clock::{Clock, SystemClock};
use plazo::config::{DaemonConfig, LogFormat, load_daemon_config};
use plazo::domain::{Client, ClientId, Invoice, InvoiceId, InvoiceStatus};
use plazo::policy::load_policy;
use plazo::schedule::plan;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config, json_logs } => serve(&config, json_logs),
        Command::Check { config } => check(&config),
        Command::Plan {
            config,
            invoice,
            client,
            now,
        } => plan_cmd(&config, &invoice, client.as_deref(), now),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(cfg: &DaemonConfig, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cfg.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json || cfg.log.format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn serve(path: &std::path::Path, json_logs: bool) -> Result<()> {
    let config = load_daemon_config(path)?;
    init_tracing(&config, json_logs);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let running = plazo::daemon::start(config, Arc::new(SystemClock)).await?;
        wait_for_signals(&running).await?;
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

fn check(path: &std::path::Path) -> Result<()> {
    let config = load_daemon_config(path)?;
    let loaded = load_policy(&config.policy_path())?;
    let p = &loaded.policy;
    let problems = loaded.templates.check_all(&p.company);
    println!(
        "daemon config  {}: ok (listen {}, data {})",
        path.display(),
        config.listen,
        config.data_dir.display()
    );
    println!("policy         {}: ok", config.policy_path().display());
    println!(
        "  defaults     zone {}, locale {}, currency {}",
        p.defaults.timezone_name, p.defaults.locale, p.defaults.currency
    );
    for (name, seg) in &p.segments {
        let cadence = &p.cadences[&seg.cadence];
        let steps: Vec<String> = cadence
            .steps
            .iter()
            .map(|s| format!("{} {}", s.name, s.offset))
            .collect();
        println!(
            "  segment      {name} -> cadence {} [{}]",
            seg.cadence,
            steps.join(", ")
        );
    }
    let ctx = plazo::channels::BuildContext::from_process_env(config.data_dir.clone());
    let mut channel_errors = 0;
    for (name, channel) in &config.channels {
        match channel.build(name, &ctx) {
            Ok(_) => println!("  channel      {name} ({}): ok", channel.adapter()),
            Err(e) => {
                channel_errors += 1;
                println!("  channel      {name} ({}): ERROR {e}", channel.adapter());
            }
        }
    }
    for (kind, channel) in &config.routes {
        println!("  route        {kind} -> {channel}");
    }
    let kinds_used: std::collections::BTreeSet<&str> = p
        .cadences
        .values()
        .flat_map(|c| c.steps.iter())
        .flat_map(|s| s.channels.iter().map(String::as_str))
        .collect();
    for kind in kinds_used {
        if !config.routes.contains_key(kind) {
            println!(
                "  warning      the policy uses channel kind {kind:?} but [routes] has no entry for it"
            );
        }
    }
    if channel_errors > 0 {
        bail!("{channel_errors} channel(s) cannot be built");
    }
    if problems.is_empty() {
        println!("templates      ok");
        Ok(())
    } else {
        for pr in &problems {
            println!("template error {pr}");
        }
        bail!("{} template problem(s)", problems.len())
    }
}

#[derive(Deserialize)]
struct PlanInvoice {
    id: String,
    #[serde(default = "default_client")]
    client_id: String,
    #[serde(default)]
    number: Option<String>,
    currency: String,
    amount: String,
    due_at: String,
    #[serde(default)]
    payment_url: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

fn default_client() -> String {
    "client".into()
}

struct PlanClient {
    id: String,
    rest: plazo::service::ClientInput,
}

fn parse_plan_client(text: &str) -> Result<PlanClient> {
    let mut value: serde_json::Value = serde_json::from_str(text)?;
    let id = value
        .as_object_mut()
        .and_then(|o| o.remove("id"))
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(default_client);
    Ok(PlanClient {
        id,
        rest: serde_json::from_value(value)?,
    })
}

fn plan_cmd(
    path: &std::path::Path,
    invoice: &std::path::Path,
    client: Option<&std::path::Path>,
    now: Option<jiff::Timestamp>,
) -> Result<()> {
    let config = load_daemon_config(path)?;
    let loaded = load_policy(&config.policy_path())?;
    let policy = &loaded.policy;
    let now = now.unwrap_or_else(|| SystemClock.now());
    let text = std::fs::read_to_string(invoice)
        .with_context(|| format!("reading {}", invoice.display()))?;
    let pi: PlanInvoice =
        serde_json::from_str(&text).with_context(|| format!("{}", invoice.display()))?;
    let client = match client {
        Some(cp) => {
            let text =
                std::fs::read_to_string(cp).with_context(|| format!("reading {}", cp.display()))?;
            let c = parse_plan_client(&text).with_context(|| format!("{}", cp.display()))?;
            Client {
                id: ClientId::new(c.id)?,
                name: c.rest.name,
                email: c.rest.email,
                phone: c.rest.phone,
                whatsapp: c.rest.whatsapp,
                locale: c.rest.locale,
                timezone: c.rest.timezone,
                country: c.rest.country,
                segment: c.rest.segment,
                preferred_channels: c.rest.preferred_channels,
                tags: c.rest.tags,
                created_at: now,
                updated_at: now,
            }
        }
        None => Client {
            id: ClientId::new(pi.client_id.clone())?,
            name: "Client".into(),
            email: None,
            phone: None,
            whatsapp: None,
            locale: None,
            timezone: None,
            country: None,
            segment: None,
            preferred_channels: vec![],
            tags: vec![],
            created_at: now,
            updated_at: now,
        },
    };
    let currency = plazo::domain::Currency::parse(&pi.currency)?;
    let money = plazo::domain::Money::parse(&pi.amount, currency)?;
    let inv = Invoice {
        id: InvoiceId::new(pi.id.clone())?,
        client_id: client.id.clone(),
        number: pi.number.unwrap_or_else(|| pi.id.clone()),
        currency,
        amount: money.amount,
        balance: money.amount,
        issued_at: None,
        due_at: plazo::domain::Due::parse(&pi.due_at).map_err(anyhow::Error::msg)?,
        payment_url: pi.payment_url,
        metadata: pi.metadata,
        status: InvoiceStatus::Open,
        payments: vec![],
        pause: None,
        generation: 0,
        cursor: None,
        pending: None,
        created_at: now,
        updated_at: now,
        closed_at: None,
    };
    let p = plan(&inv, &client, policy, now);
    println!(
        "invoice {} due {} — segment {}, cadence {}, zone {}, now {}",
        inv.id, inv.due_at, p.segment, p.cadence, p.zone, now
    );
    println!(
        "{:<3} {:<18} {:<7} {:<22} {:<27} {:<22} status",
        "#", "step", "offset", "channels", "local time", "UTC"
    );
    for s in &p.steps {
        let step = &policy.cadences[&p.cadence].steps[s.index as usize];
        println!(
            "{:<3} {:<18} {:<7} {:<22} {:<27} {:<22} {:?}",
            s.index,
            s.step,
            step.offset.to_string(),
            s.channels.join(","),
            s.fire_at.strftime("%a %Y-%m-%d %H:%M %Z").to_string(),
            s.fire_at
                .timestamp()
                .strftime("%Y-%m-%dT%H:%MZ")
                .to_string(),
            s.status
        );
    }
    Ok(())
}
