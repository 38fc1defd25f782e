//! Shared set-up for the benches: a test policy (one webhook step due at the due instant, a
//! second one 30 days later), a daemon config routing `webhook` to a local sink, machine info.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod providers;
pub mod smtp_sink;

/// The allocator of the `plazo` binary (`src/main.rs`), so in-process benches measure what
/// ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};

pub const TOKEN: &str = "bench-token-0123456789";
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The Stripe endpoint signing secret (`[stripe] webhook_secret`, default env
/// `STRIPE_WEBHOOK_SECRET`).
pub const STRIPE_SECRET: &str = "whsec_bench_stripe_4Kq8ZtR2mW7xN3pL";

/// Repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A policy whose contact window never defers (daily 00:00–23:59, UTC): step 1 fires exactly at
/// the invoice's due instant over `webhook`, step 2 thirty days later.
pub fn policy_text() -> String {
    policy_text_for("webhook")
}

/// [`policy_text`] with both steps on channel kind `kind` (`webhook`, `sms`, `whatsapp`,
/// `email`). For
/// `whatsapp` each step maps the approved template `recordatorio_pago` (es) with a text, a
/// currency and a date body parameter and a URL button carrying the invoice id.
pub fn policy_text_for(kind: &str) -> String {
    let wa = if kind == "whatsapp" {
        "whatsapp = { template = \"recordatorio_pago\", language = \"es\", body = [{ text = \"{{ client.first_name }}\" }, { currency = \"balance\" }, { date_time = \"due_date\" }], button_url = \"{{ invoice.id }}\" }\n"
    } else {
        ""
    };
    format!(
        r#"
templates_dir = "{templates}"
default_segment = "standard"
[defaults]
timezone = "UTC"
locale = "es"
currency = "COP"
send_at = "09:00"
window = {{ days = "daily", from = "00:00", to = "23:59" }}
[company]
name = "Tornillo"
[segments.standard]
cadence = "one"
[[cadences.one.steps]]
name = "due_today"
offset = "0d"
channels = ["{kind}"]
template = "due_today"
tone = "friendly"
{wa}[[cadences.one.steps]]
name = "firm_overdue"
offset = "+30d"
channels = ["{kind}"]
template = "firm_overdue"
tone = "firm"
{wa}"#,
        templates = repo().join("config/templates").display()
    )
}

/// Writes `policy.toml` into `dir` and returns its path.
pub fn write_policy(dir: &Path) -> PathBuf {
    write_policy_for(dir, "webhook")
}

/// Writes [`policy_text_for`] `kind` into `dir/policy.toml` and returns its path.
pub fn write_policy_for(dir: &Path, kind: &str) -> PathBuf {
    let p = dir.join("policy.toml");
    std::fs::write(&p, policy_text_for(kind)).unwrap();
    p
}

/// Daemon config text routing channel kind `kind` (`webhook`, `sms`, `whatsapp`, `email`) to
/// the provider mock at `mock_base` (`http://127.0.0.1:PORT`; for `email` the SMTP sink's
/// `smtp://127.0.0.1:PORT`) through the real adapter (`webhook`, `twilio` as
/// `[channels.twilio]`, `whatsapp` as `[channels.wa]`, `smtp` as `[channels.mail]`), optionally
/// rate-limited.
/// `public_url` is set so Twilio requests carry a `StatusCallback`. Otherwise as
/// [`config_text`].
pub fn config_text_for(
    listen: &str,
    data_dir: &Path,
    mock_base: &str,
    kind: &str,
    rate_limit: Option<(f64, u32)>,
) -> String {
    let (name, adapter) = match kind {
        "sms" => ("twilio", "twilio"),
        "whatsapp" => ("wa", "whatsapp"),
        "email" => ("mail", "smtp"),
        _ => ("crm", "webhook"),
    };
    format!(
        r#"
listen = "{listen}"
public_url = "{public}"
data_dir = "{data}"
policy = "policy.toml"
cache_mib = 64
[api]
token = {{ env = "PLAZO_API_TOKEN" }}
[log]
level = "{level}"
[dispatch]
concurrency = 64
batch = 512
[payment_webhooks]
secret = {{ env = "PLAZO_WEBHOOK_SECRET" }}
[routes]
{kind} = "{name}"
[channels.{name}]
{table}"#,
        public = providers::PUBLIC_URL,
        data = data_dir.display(),
        level = std::env::var("BENCH_LOG_LEVEL").unwrap_or_else(|_| "info".into()),
        table = providers::channel_toml(adapter, mock_base, rate_limit),
    )
}

/// Daemon config text: listen on `listen`, data under `data_dir`, webhook channel to `sink_url`;
/// log level `BENCH_LOG_LEVEL` (default `info`, the shipped default).
pub fn config_text(listen: &str, data_dir: &Path, sink_url: &str) -> String {
    format!(
        r#"
listen = "{listen}"
data_dir = "{data}"
policy = "policy.toml"
cache_mib = 64
[api]
token = {{ env = "PLAZO_API_TOKEN" }}
[log]
level = "{level}"
[dispatch]
concurrency = 64
batch = 512
[payment_webhooks]
secret = {{ env = "PLAZO_WEBHOOK_SECRET" }}
[routes]
webhook = "crm"
[channels.crm]
type = "webhook"
url = "{sink_url}"
secret_env = "PLAZO_WEBHOOK_SECRET"
"#,
        data = data_dir.display(),
        level = std::env::var("BENCH_LOG_LEVEL").unwrap_or_else(|_| "info".into())
    )
}

/// Sets the environment variables the config refers to (call before any thread starts).
pub fn set_env() {
    // SAFETY-free in edition 2024 terms: called first thing in main, before threads exist.
    unsafe {
        std::env::set_var("PLAZO_API_TOKEN", TOKEN);
        std::env::set_var("PLAZO_WEBHOOK_SECRET", WEBHOOK_SECRET);
        std::env::set_var("PLAZO_TWILIO_TOKEN", providers::TWILIO_TOKEN);
        std::env::set_var("PLAZO_WA_TOKEN", providers::WA_TOKEN);
        std::env::set_var("STRIPE_WEBHOOK_SECRET", STRIPE_SECRET);
    }
}

/// nproc, CPU model, RAM, load average: printed with every run.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("?")
        .trim()
        .to_owned();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "nproc={cpus} cpu=\"{model}\" {} loadavg={} profile={}",
        mem.split_whitespace().collect::<Vec<_>>().join(" "),
        load.trim(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release(bench)"
        }
    )
}

/// CPU seconds used so far: by the whole process (threads that have ended included), and by
/// its live threads whose name starts with `prefix` (e.g. a load client's runtime). Read from
/// `/proc` at the kernel's tick resolution (10 ms per thread), enough over runs of seconds.
pub fn cpu_secs(prefix: &str) -> (f64, f64) {
    // utime + stime: fields 14 and 15 of `stat`, counted after the `(comm)` field.
    fn ticks(stat: &str) -> Option<(String, u64)> {
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = stat.get(open + 1..close)?.to_owned();
        let f: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
        Some((
            comm,
            f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?,
        ))
    }
    let hz = 100.0; // USER_HZ on Linux
    let total = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| ticks(&s))
        .map_or(0, |(_, t)| t);
    let mut matching = 0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            if let Some((comm, n)) = std::fs::read_to_string(t.path().join("stat"))
                .ok()
                .and_then(|s| ticks(&s))
            {
                if comm.starts_with(prefix) {
                    matching += n;
                }
            }
        }
    }
    (total as f64 / hz, matching as f64 / hz)
}

/// An env var parsed, or a default.
pub fn env_or<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// Percentile (0..=100) of a sorted slice.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The body of one benchmark invoice, `F-{i}` for client `c1`, due at `due`.
pub fn invoice_input(i: usize, due: jiff::Timestamp) -> plazo::service::InvoiceInput {
    plazo::service::InvoiceInput {
        client_id: "c1".into(),
        number: format!("F-{i}"),
        currency: "COP".into(),
        amount: "1250000.00".into(),
        issued_at: None,
        due_at: due.to_string(),
        payment_url: Some("https://pay.example.co/x".into()),
        metadata: Default::default(),
    }
}
