//! The SMS (Twilio) and WhatsApp adapters on their own, and the rate limiter in front of them.
//!
//! Scenarios (first non-flag argument or `CHANNELS_SCENARIO`, comma-separated; default
//! `adapters,limiter`):
//!
//! - `adapters`: the real adapters built from TOML with `ChannelConfig::build`, exactly as the
//!   daemon builds them (Twilio with `public_url` set, so every request carries
//!   `StatusCallback`; no `rate_limit`), send `CHANNELS_N` (50000) messages each with
//!   `CHANNELS_CONC` (64) `channel.send(&outbound)` calls in flight, after a warm-up of
//!   `4 × CHANNELS_CONC` messages. The provider APIs are served by the local mock in
//!   `common/providers.rs` (own thread, own tokio runtime with `CHANNELS_MOCK_THREADS` (1)
//!   workers) which parses, checks and answers each request like the provider and records it.
//!   The senders run on a separate runtime with `CHANNELS_SEND_THREADS` (1) workers.
//!   `CHANNELS_ADAPTERS` (default `twilio,whatsapp,webhook`; the webhook adapter is the
//!   baseline) selects adapters. Prints messages/s and send latency percentiles.
//! - `limiter`: a channel with `rate_limit = { per_second = R, burst = LIMIT_BURST (1) }`,
//!   driven the way the dispatcher drives it (`src/dispatch/mod.rs` `run` and
//!   `src/dispatch/process.rs` `try_channel`): a producer offers `LIMIT_OFFER_FACTOR` (5) × R
//!   messages per second into a due queue for `LIMIT_SECS` (60) s; a loop claims due messages
//!   with `LIMIT_CONC` (64) permits; each task takes its booked slot or `limiter.reserve(now)`,
//!   puts the message back in the due queue until the slot when it is more than 1 s away, or
//!   sleeps until it (tokio) and sends through the real adapter. The mock records arrival
//!   times. Runs Twilio at each rate of `LIMIT_RATE` (comma list, default `10`) and WhatsApp at
//!   each rate of `LIMIT_WA_RATE` (default `80`); `LIMIT_RUNS=twilio:1,whatsapp:80` overrides.
//!
//! Run: `cargo bench --bench channels -- adapters` etc.; see BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::disallowed_methods)] // tests and benches may read the real clock

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::providers::{self, MockState};
use jiff::Timestamp;
use plazo::channels::{
    BuildContext, ChannelConfig, Outbound, SharedChannel, TemplateParam, WhatsAppContent,
    WhatsAppTemplate,
};
use plazo::domain::{ClientId, InvoiceId, ReminderId};
use tokio::sync::{Notify, Semaphore};

fn rt(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .unwrap()
}

/// Builds adapter `adapter` (`twilio`, `whatsapp`, `webhook`) from its TOML table, as the
/// daemon does, with a fresh limiter registry.
fn build(adapter: &str, base: &str, rate_limit: Option<(f64, u32)>) -> SharedChannel {
    let text = providers::channel_toml(adapter, base, rate_limit);
    let cfg: ChannelConfig = toml::from_str(&text).unwrap();
    let data = tempfile::tempdir().unwrap();
    let ctx = BuildContext {
        data_dir: data.path().to_owned(),
        env: Arc::new(providers::secret),
        public_url: Some(reqwest::Url::parse(providers::PUBLIC_URL).unwrap()),
        limiters: Default::default(),
        clock: Arc::new(plazo::clock::SystemClock),
    };
    let name = match adapter {
        "twilio" => "twilio",
        "whatsapp" => "wa",
        _ => "crm",
    };
    cfg.build(name, &ctx).unwrap()
}

/// The message for benchmark index `i` on `adapter`: what the dispatcher hands a channel for
/// the `due_today` step (an SMS-length Spanish text with the invoice number, and for WhatsApp
/// the approved template with text, currency and date parameters and a URL button).
fn outbound(adapter: &str, i: usize) -> Outbound {
    let invoice = InvoiceId::new(format!("inv-{i}")).unwrap();
    let kind = match adapter {
        "twilio" => "sms",
        "whatsapp" => "whatsapp",
        _ => "webhook",
    };
    let to = match kind {
        "webhook" => "c1".to_owned(),
        _ => format!("+57300{:07}", i % 10_000_000),
    };
    let whatsapp = (kind == "whatsapp").then(|| WhatsAppContent {
        session_open: false,
        template: Some(WhatsAppTemplate {
            name: "recordatorio_pago".into(),
            language: "es".into(),
            body: vec![
                TemplateParam::Text { text: "Ana".into() },
                TemplateParam::Currency {
                    fallback_value: "$ 1.250.000".into(),
                    code: "COP".into(),
                    amount_1000: 1_250_000_000,
                },
                TemplateParam::DateTime {
                    fallback_value: "15 de marzo de 2026".into(),
                },
            ],
            button_url: Some(format!("inv-{i}")),
        }),
    });
    Outbound {
        reminder_id: ReminderId::derive(&invoice, 1, 0),
        invoice_id: invoice,
        client_id: ClientId::new("c1").unwrap(),
        kind: kind.into(),
        to,
        to_name: "Ana".into(),
        subject: None,
        text: format!(
            "Buen día, Ana: hoy vence su factura F-{i} por $ 1.250.000 con Ferretería El \
             Tornillo. Pague en https://pay.example.co/x. Si ya pagó, gracias. Responda BAJA \
             para no recibir más mensajes."
        ),
        html: None,
        step: "due_today".into(),
        tone: "friendly".into(),
        locale: "es".into(),
        unsubscribe_url: None,
        whatsapp,
    }
}

/// Sends `msgs[range]` with `conc` sends in flight; returns elapsed and latencies (ms).
async fn send_all(
    ch: &SharedChannel,
    msgs: &Arc<Vec<Outbound>>,
    range: std::ops::Range<usize>,
    conc: usize,
) -> (Duration, Vec<f64>) {
    let next = Arc::new(AtomicUsize::new(range.start));
    let end = range.end;
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..conc {
        let (ch, msgs, next) = (ch.clone(), msgs.clone(), next.clone());
        tasks.spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    break;
                }
                let s = Instant::now();
                let r = ch.send(&msgs[i]).await;
                lat.push(s.elapsed().as_secs_f64() * 1000.0);
                let r = r.unwrap_or_else(|e| panic_msg(&format!("send {i} failed: {e}")));
                if ch.adapter() != "webhook" {
                    assert!(r.provider_message_id.is_some(), "no provider id for {i}");
                }
            }
            lat
        });
    }
    let mut all = Vec::with_capacity(end - range.start);
    while let Some(l) = tasks.join_next().await {
        all.extend(l.unwrap());
    }
    (t0.elapsed(), all)
}

#[allow(clippy::panic)]
fn panic_msg(m: &str) -> ! {
    panic!("{m}")
}

fn scenario_adapters() {
    let n = common::env_or("CHANNELS_N", 50_000usize);
    let conc = common::env_or("CHANNELS_CONC", 64usize);
    let send_threads = common::env_or("CHANNELS_SEND_THREADS", 1usize);
    let mock_threads = common::env_or("CHANNELS_MOCK_THREADS", 1usize);
    let adapters =
        std::env::var("CHANNELS_ADAPTERS").unwrap_or_else(|_| "twilio,whatsapp,webhook".into());
    let warm = conc * 4;
    let (addr, mock) = providers::start(mock_threads);
    let base = format!("http://{addr}");
    let srt = rt(send_threads);
    for adapter in adapters.split(',').map(str::trim) {
        let ch = build(adapter, &base, None);
        let msgs: Arc<Vec<Outbound>> =
            Arc::new((0..warm + n).map(|i| outbound(adapter, i)).collect());
        let before = mock.count(adapter);
        let (el, mut lat) = srt.block_on(async {
            send_all(&ch, &msgs, 0..warm, conc).await;
            send_all(&ch, &msgs, warm..warm + n, conc).await
        });
        lat.sort_by(|a, b| a.total_cmp(b));
        let arrivals: Vec<_> = mock.arrivals(adapter).lock().unwrap()[before..].to_vec();
        let mut keys: Vec<usize> = arrivals.iter().filter_map(|a| a.key).collect();
        keys.sort_unstable();
        keys.dedup();
        println!(
            "adapter {adapter}: n={n} conc={conc} send_threads={send_threads} mock_threads={mock_threads}: \
             {:.2} s -> {:.0} messages/s; send latency ms p50 {:.2} p99 {:.2} max {:.2}; \
             mock saw {} (distinct {}, incl. {warm} warm-up), rejected {}",
            el.as_secs_f64(),
            n as f64 / el.as_secs_f64(),
            common::pct(&lat, 50.0),
            common::pct(&lat, 99.0),
            common::pct(&lat, 100.0),
            arrivals.len(),
            keys.len(),
            mock.rejected.load(Ordering::Relaxed),
        );
        assert_eq!(arrivals.len(), warm + n);
        assert_eq!(keys.len(), warm + n);
        assert_eq!(
            mock.rejected.load(Ordering::Relaxed),
            0,
            "{}",
            mock.last_rejection.lock().unwrap()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Rate limiter, driven like the dispatcher

/// Longest a send waits in-task for its slot (`MAX_INLINE_RATE_WAIT` in dispatch/process.rs).
const MAX_INLINE_RATE_WAIT: Duration = Duration::from_secs(1);
/// Longest the loop sleeps without looking at the due queue (`MAX_IDLE` in dispatch/mod.rs).
const MAX_IDLE: Duration = Duration::from_secs(30);

/// A queued message: its index and the slot booked for it, if any (`Reminder::rate_slot`).
#[derive(Clone, Copy)]
struct Item {
    i: usize,
    rate_slot: Option<Timestamp>,
}

/// The due index: (fire_at ns, index) → item.
#[derive(Default)]
struct DueQueue {
    q: Mutex<BTreeMap<(i128, usize), Item>>,
}

impl DueQueue {
    fn schedule(&self, at: Timestamp, item: Item) {
        self.q
            .lock()
            .unwrap()
            .insert((at.as_nanosecond(), item.i), item);
    }
    /// Removes and returns up to `limit` items due at `now`, earliest first.
    fn claim(&self, now: Timestamp, limit: usize) -> Vec<Item> {
        let mut q = self.q.lock().unwrap();
        let mut out = Vec::new();
        while out.len() < limit {
            match q.first_key_value() {
                Some((k, _)) if k.0 <= now.as_nanosecond() => {
                    out.push(q.pop_first().unwrap().1);
                }
                _ => break,
            }
        }
        out
    }
    fn next_due(&self) -> Option<i128> {
        self.q.lock().unwrap().first_key_value().map(|(k, _)| k.0)
    }
    fn len(&self) -> usize {
        self.q.lock().unwrap().len()
    }
}

#[derive(Default)]
struct Counters {
    offered: AtomicUsize,
    sent: AtomicUsize,
    failed: AtomicUsize,
    rescheduled: AtomicUsize,
    in_task: AtomicUsize,
    /// (index, booked slot in µs) of every message sent.
    slots: Mutex<Vec<(usize, i64)>>,
}

/// What `try_channel` does with the limiter, then the send.
async fn process(
    ch: SharedChannel,
    adapter: &'static str,
    item: Item,
    due: Arc<DueQueue>,
    wake: Arc<Notify>,
    c: Arc<Counters>,
) {
    let now = Timestamp::now();
    let limiter = ch.rate_limiter().expect("rate-limited channel");
    let slot = item.rate_slot.unwrap_or_else(|| limiter.reserve(now));
    let wait = slot.duration_since(now);
    let wait = Duration::try_from(wait).unwrap_or(Duration::ZERO);
    if wait > MAX_INLINE_RATE_WAIT {
        // Tried::Wait → Ending::Reschedule(slot) with r.rate_slot = Some(slot).
        due.schedule(
            slot,
            Item {
                i: item.i,
                rate_slot: Some(slot),
            },
        );
        c.rescheduled.fetch_add(1, Ordering::Relaxed);
        wake.notify_one();
        return;
    }
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    c.slots
        .lock()
        .unwrap()
        .push((item.i, slot.as_microsecond()));
    let msg = outbound(adapter, item.i);
    match ch.send(&msg).await {
        Ok(_) => c.sent.fetch_add(1, Ordering::Relaxed),
        Err(e) => {
            eprintln!("send {} failed: {e}", item.i);
            c.failed.fetch_add(1, Ordering::Relaxed)
        }
    };
}

fn limiter_run(adapter: &'static str, rate: f64, addr: std::net::SocketAddr, mock: &MockState) {
    let secs = common::env_or("LIMIT_SECS", 60.0f64);
    let burst = common::env_or("LIMIT_BURST", 1u32);
    let factor = common::env_or("LIMIT_OFFER_FACTOR", 5.0f64);
    let conc = common::env_or("LIMIT_CONC", 64usize);
    let offer_rate = rate * factor;
    let ch = build(adapter, &format!("http://{addr}"), Some((rate, burst)));
    let before = mock.count(adapter);
    let due = Arc::new(DueQueue::default());
    let wake = Arc::new(Notify::new());
    let c = Arc::new(Counters::default());
    // Like the daemon's runtime: 2 workers.
    let srt = rt(2);
    let (in_flight_at_stop, queued_at_stop) = srt.block_on(async {
        let t0 = Instant::now();
        let stop = tokio::time::Instant::now() + Duration::from_secs_f64(secs);
        // Producer: offer_rate messages per second, each due now.
        let producer = {
            let (due, wake, c) = (due.clone(), wake.clone(), c.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(10));
                loop {
                    tick.tick().await;
                    if tokio::time::Instant::now() >= stop {
                        break;
                    }
                    let target = (t0.elapsed().as_secs_f64() * offer_rate).ceil() as usize;
                    let now = Timestamp::now();
                    while c.offered.load(Ordering::Relaxed) < target {
                        let i = c.offered.fetch_add(1, Ordering::Relaxed);
                        due.schedule(now, Item { i, rate_slot: None });
                    }
                    wake.notify_one();
                }
            })
        };
        // The dispatcher loop (dispatch/mod.rs `run`, without the store).
        let permits = Arc::new(Semaphore::new(conc));
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            while tasks.try_join_next().is_some() {}
            let first = tokio::select! {
                p = permits.clone().acquire_owned() => p.unwrap(),
                _ = tokio::time::sleep_until(stop) => break,
            };
            if tokio::time::Instant::now() >= stop {
                break;
            }
            let room = permits.available_permits() + 1;
            let claimed = due.claim(Timestamp::now(), room);
            if claimed.is_empty() {
                drop(first);
                let wait = due.next_due().map_or(MAX_IDLE, |t| {
                    let d = t - Timestamp::now().as_nanosecond();
                    Duration::from_nanos(u64::try_from(d.max(0)).unwrap_or(u64::MAX)).min(MAX_IDLE)
                });
                if wait.is_zero() {
                    continue;
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep_until(stop) => {}
                }
                continue;
            }
            let mut first = Some(first);
            for item in claimed {
                let permit = match first.take() {
                    Some(p) => p,
                    None => permits.clone().acquire_owned().await.unwrap(),
                };
                let (ch, due, wake, c) = (ch.clone(), due.clone(), wake.clone(), c.clone());
                c.in_task.fetch_add(1, Ordering::Relaxed);
                tasks.spawn(async move {
                    process(ch, adapter, item, due, wake, c.clone()).await;
                    c.in_task.fetch_sub(1, Ordering::Relaxed);
                    drop(permit);
                });
            }
        }
        producer.await.unwrap();
        let in_flight = c.in_task.load(Ordering::Relaxed);
        let queued = due.len();
        // Drain: the tasks already holding a slot within 1 s send (as the daemon's drain does);
        // nothing new is claimed.
        while tasks.join_next().await.is_some() {}
        (in_flight, queued)
    });
    let seen = mock.arrivals(adapter).lock().unwrap()[before..].to_vec();
    let arrivals: Vec<i64> = seen.iter().map(|a| a.at_us).collect();
    let rs = providers::rate_stats(&arrivals);
    // Arrival at the mock minus the slot the limiter booked, per message.
    let slots: std::collections::HashMap<usize, i64> =
        c.slots.lock().unwrap().iter().copied().collect();
    let mut behind: Vec<f64> = seen
        .iter()
        .filter_map(|a| Some((a.at_us - slots.get(&a.key?)?) as f64 / 1000.0))
        .collect();
    behind.sort_by(|a, b| a.total_cmp(b));
    let slot_times: Vec<i64> = slots.values().copied().collect();
    let slot_stats = providers::rate_stats(&slot_times);
    let offered = c.offered.load(Ordering::Relaxed);
    let sent = c.sent.load(Ordering::Relaxed);
    let failed = c.failed.load(Ordering::Relaxed);
    let queued = due.len();
    let err_pct = |m: f64| (m - rate) / rate * 100.0;
    println!(
        "limiter {adapter}: rate_limit={rate}/s burst={burst}, offered {offered} at {offer_rate}/s for {secs} s, \
         conc={conc}: at the mock {} arrivals over {:.3} s (first->last): n/span {:.3}/s ({:+.2} %), \
         (n-1)/span {:.3}/s ({:+.2} %); max in any 1 s window {} (of booked slots: {}); \
         shortest gap {:.1} ms (interval {:.1} ms); \
         arrival - slot ms p50 {:.2} p99 {:.2} max {:.2} ({} matched); sent {sent}, failed {failed}, \
         still queued {queued} (at stop: {queued_at_stop} queued + {in_flight_at_stop} in flight), \
         rescheduled {} times; sent+queued+failed = {} of {offered} offered; rejected by mock {}",
        rs.n,
        rs.span_s,
        rs.per_span,
        err_pct(rs.per_span),
        rs.intervals_per_s,
        err_pct(rs.intervals_per_s),
        rs.max_1s,
        slot_stats.max_1s,
        rs.min_gap_ms,
        1000.0 / rate,
        common::pct(&behind, 50.0),
        common::pct(&behind, 99.0),
        common::pct(&behind, 100.0),
        behind.len(),
        c.rescheduled.load(Ordering::Relaxed),
        sent + queued + failed,
        mock.rejected.load(Ordering::Relaxed),
    );
    assert_eq!(sent, rs.n, "every send reached the mock");
    assert_eq!(sent + queued + failed, offered, "a message was dropped");
}

fn scenario_limiter() {
    let runs = std::env::var("LIMIT_RUNS").unwrap_or_else(|_| {
        let tw = std::env::var("LIMIT_RATE").unwrap_or_else(|_| "10".into());
        let wa = std::env::var("LIMIT_WA_RATE").unwrap_or_else(|_| "80".into());
        tw.split(',')
            .map(|r| format!("twilio:{r}"))
            .chain(wa.split(',').map(|r| format!("whatsapp:{r}")))
            .collect::<Vec<_>>()
            .join(",")
    });
    let (addr, mock) = providers::start(common::env_or("CHANNELS_MOCK_THREADS", 1usize));
    for run in runs.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        let (adapter, rate) = run.split_once(':').expect("adapter:rate");
        let adapter: &'static str = match adapter {
            "twilio" => "twilio",
            "whatsapp" => "whatsapp",
            other => panic_msg(&format!(
                "limiter adapter {other:?}: use twilio or whatsapp"
            )),
        };
        limiter_run(adapter, rate.trim().parse().expect("rate"), addr, &mock);
    }
}

fn main() {
    common::set_env();
    println!("machine: {}", common::machine());
    let arg = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .or_else(|| std::env::var("CHANNELS_SCENARIO").ok())
        .unwrap_or_else(|| "adapters,limiter".into());
    for s in arg.split(',') {
        match s.trim() {
            "adapters" => scenario_adapters(),
            "limiter" => scenario_limiter(),
            other => eprintln!("unknown scenario {other:?}: use adapters, limiter"),
        }
    }
}
