//! The commands that go through a running daemon's API and print or write its answer:
//! `plazo report` and `plazo simulate` (`plazo import`, which streams, is in `import_cli`).

use anyhow::{Context, Result, bail};
use plazo::config::load_daemon_config;

/// `plazo report`: fetches the reports from the running daemon and writes them.
pub fn report(
    config: &std::path::Path,
    out: &std::path::Path,
    format: plazo::report::Format,
    query: plazo::service::reports::ReportQuery,
) -> Result<()> {
    let cfg = load_daemon_config(config)?;
    let remote = plazo::remote::Remote::from_config(&cfg)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let data = rt.block_on(plazo::report::fetch(&remote, &query))?;
    for path in plazo::report::write(&data, format, out)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// `plazo simulate`: asks the running daemon to simulate, prints its summary.
pub fn simulate(
    out: &mut String,
    config: &std::path::Path,
    policy: Option<&std::path::Path>,
    days: u32,
    json: bool,
) -> Result<()> {
    let cfg = load_daemon_config(config)?;
    let remote = plazo::remote::Remote::from_config(&cfg)?;
    let candidate = match policy {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading the candidate policy {}", p.display()))?,
        ),
        None => None,
    };
    let body = serde_json::json!({ "days": days, "policy": candidate });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let (status, text) = rt.block_on(async {
        let resp = remote
            .post("/v1/simulate")
            .json(&body)
            .send()
            .await
            .with_context(|| format!("reaching the daemon at {}", remote.base()))?;
        let status = resp.status();
        let text = resp.text().await.context("reading the daemon's answer")?;
        anyhow::Ok((status, text))
    })?;
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or(text);
        bail!("the daemon refused the simulation ({status}): {message}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&text).context("the daemon's answer is not JSON")?;
    if json {
        out.push_str(&serde_json::to_string_pretty(&report)?);
        out.push('\n');
    } else {
        out.push_str(&plazo::simulate::render(&report));
    }
    Ok(())
}
