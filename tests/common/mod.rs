//! Shared helpers for integration tests: the real `plazo` binary on a socket the test binds and
//! hands over (systemd socket activation: fd 3, `LISTEN_FDS=1`), a temporary data directory, a
//! real SMTP server on loopback, and a signed-request helper.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

pub mod burst;
pub mod inproc;
pub mod mock_http;
pub mod rec;
pub mod receiver;
pub mod sim;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailin_embedded::response::{self, Response};
use mailin_embedded::{Handler, Server};

/// Repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Listeners bound by [`free_port`], by port; kept open for the whole test run so that no
/// other process can take the port, and handed to every daemon started on it.
fn listeners() -> &'static Mutex<std::collections::HashMap<u16, TcpListener>> {
    static L: std::sync::OnceLock<Mutex<std::collections::HashMap<u16, TcpListener>>> =
        std::sync::OnceLock::new();
    L.get_or_init(Default::default)
}

/// Whether this run puts the integration tests on PostgreSQL (`PLAZO_TEST_STORE=postgres`,
/// the second half of the README's test command) instead of the default embedded sled store.
pub fn on_postgres() -> bool {
    std::env::var("PLAZO_TEST_STORE").is_ok_and(|v| v == "postgres")
}

/// The backend this run's stores are on, as `Store::backend_name` names it.
pub fn test_backend() -> &'static str {
    if on_postgres() { "postgres" } else { "sled" }
}

/// Skips the calling test on the PostgreSQL run, saying why: for the few tests about sled
/// itself (its files on disk, schema-1 directories, its crash recovery by log replay).
/// Returns true when the caller should return.
pub fn sled_only(why: &str) -> bool {
    if on_postgres() {
        eprintln!("sled only, not run on PostgreSQL: {why}");
        return true;
    }
    false
}

/// A new, empty database on this test binary's PostgreSQL server; panics with the reason when
/// the run asked for PostgreSQL and there is none (the sled run never calls this).
pub fn test_database_url() -> String {
    match plazo::store::pg_testing::new_database() {
        Ok(Some(url)) => url,
        Ok(None) => panic!(
            "PLAZO_TEST_STORE=postgres but PostgreSQL's binaries were not found (install \
             Debian's postgresql package or set PLAZO_PG_BIN)"
        ),
        Err(e) => panic!("{e}"),
    }
}

/// The store of an in-process test in `dir`: sled in `dir/db`, or on the PostgreSQL run the
/// database of `dir` (see [`open_store_at`]).
pub fn open_test_store(dir: &Path) -> plazo::store::Store {
    open_store_at(&dir.join("db"), dir)
}

/// Opens (or reopens) a test store: sled at `sled_db`, or on the PostgreSQL run the database
/// whose URL is in `dir/database-url`, created on first use (this process then leads it). A
/// daemon whose config lives in `dir` uses the same database ([`store_table`]).
pub fn open_store_at(sled_db: &Path, dir: &Path) -> plazo::store::Store {
    try_open_store_at(sled_db, dir).unwrap()
}

/// [`open_store_at`], answering the error instead of panicking (a store that is still held).
pub fn try_open_store_at(
    sled_db: &Path,
    dir: &Path,
) -> Result<plazo::store::Store, plazo::store::StoreError> {
    use plazo::store::{PgBackend, Store, StoreOptions};
    if on_postgres() {
        let url = database_url_of(dir);
        let backend = PgBackend::open(&url, StoreOptions::default())?;
        Ok(Store::with_backend(Arc::new(backend)))
    } else {
        Store::open(sled_db, StoreOptions::default())
    }
}

/// The URL of `dir`'s test database (see [`database_url_file`]).
fn database_url_of(dir: &Path) -> String {
    std::fs::read_to_string(database_url_file(dir))
        .unwrap()
        .trim()
        .to_owned()
}

/// The private file `dir/database-url` holding the URL of `dir`'s test database, which is
/// created, and the file written, on first use.
fn database_url_file(dir: &Path) -> PathBuf {
    let file = dir.join("database-url");
    if !file.exists() {
        write_private(&file, &test_database_url());
    }
    file
}

/// The comment heading the `[store]` table [`store_table`] adds.
const TEST_STORE_MARK: &str = "# the test run's store (PLAZO_TEST_STORE)";

/// On the PostgreSQL run, the `[store]` table that puts a daemon whose config lives in `dir`
/// on that directory's database (created on first use, its URL in the private file
/// `dir/database-url`, so a restarted daemon finds the same data); empty on the sled run.
pub fn store_table(dir: &Path) -> String {
    if !on_postgres() {
        return String::new();
    }
    let file = database_url_file(dir);
    format!(
        "\n{TEST_STORE_MARK}\n[store]\nbackend = \"postgres\"\nurl = {{ file = \"{}\" }}\nstandby_poll_ms = 100\n",
        file.display()
    )
}

/// On the PostgreSQL run, adds [`store_table`] to `dir/plazo.toml` unless it names a store.
fn put_on_test_store(dir: &Path, config: &Path) {
    if !on_postgres() {
        return;
    }
    let text = std::fs::read_to_string(config).unwrap();
    if text.lines().any(|l| l.trim() == "[store]") {
        return;
    }
    std::fs::write(config, format!("{text}\n{}", store_table(dir))).unwrap();
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// A copy of the shipped `config/` (daemon config, policy, templates) in a temp dir.
pub fn config_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("config"), dir.path());
    dir
}

/// Writes a secret file readable by its owner only (plazo refuses secrets others can read).
pub fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Binds a loopback listener for a daemon and returns its port. The test keeps the socket;
/// [`Daemon::start`] passes it to the daemon as fd 3 (socket activation), so there is no race
/// for a free port, and a daemon restarted on the same port gets the same socket.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listeners().lock().unwrap().insert(port, listener);
    port
}

/// Makes `cmd` receive the listener of `port` (from [`free_port`]) as fd 3 with
/// `LISTEN_FDS=1`, the systemd socket-activation protocol.
fn pass_listener(cmd: &mut Command, port: u16) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let fd = listeners()
        .lock()
        .unwrap()
        .get(&port)
        .unwrap_or_else(|| panic!("port {port} was not bound with free_port()"))
        .as_raw_fd();
    cmd.env("LISTEN_FDS", "1").env_remove("LISTEN_PID");
    // SAFETY: between fork and exec only async-signal-safe calls (dup2, fcntl) are made; `fd`
    // stays open in the parent (the listener lives in a static map).
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                // Already at 3: only clear close-on-exec.
                let flags = libc::fcntl(3, libc::F_GETFD);
                if flags < 0 || libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// One message received by the SMTP server.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

#[derive(Clone, Default)]
struct Capture {
    current: Mail,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl Handler for Capture {
    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Mail {
            from: from.to_owned(),
            to: to.to_vec(),
            data: String::new(),
        };
        response::OK
    }
    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.data.push_str(&String::from_utf8_lossy(buf));
        Ok(())
    }
    fn data_end(&mut self) -> Response {
        self.mails
            .lock()
            .unwrap()
            .push(std::mem::take(&mut self.current));
        response::OK
    }
}

/// A real SMTP server (mailin) on loopback, capturing every message it accepts.
pub struct SmtpServer {
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let capture = Capture::default();
        let mails = capture.mails.clone();
        let mut server = Server::new(capture);
        server
            .with_name("mx.test")
            .with_num_threads(4)
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        SmtpServer { addr, mails }
    }
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        let end = Instant::now() + timeout;
        loop {
            let m = self.mails();
            if m.len() >= n || Instant::now() > end {
                return m;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The real daemon, as a child process.
pub struct Daemon {
    pub child: Child,
    pub base: String,
    pub token: String,
    pub config: PathBuf,
    pub log: PathBuf,
}

pub const TOKEN: &str = "test-token-0123456789";
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Twilio Auth Token given to the daemon (channel and callbacks).
pub const TWILIO_TOKEN: &str = "twilio-auth-token-test-0001";
/// WhatsApp access token (Graph API Bearer) given to the daemon.
pub const WA_ACCESS_TOKEN: &str = "EAAG-test-access-token";
/// Meta App Secret (X-Hub-Signature-256) given to the daemon.
pub const WA_APP_SECRET: &str = "wa-app-secret-test";
/// WhatsApp webhook verify token given to the daemon.
pub const WA_VERIFY_TOKEN: &str = "wa-verify-token-test";
/// Stripe endpoint signing secret given to the daemon.
pub const STRIPE_SECRET: &str = "whsec_test_secret";
/// Mercado Pago secret signature given to the daemon.
pub const MP_SECRET: &str = "your_secret_key_here";
/// Mercado Pago access token given to the daemon.
pub const MP_TOKEN: &str = "APP_USR-test-token";

impl Daemon {
    /// Writes `config_text` to `dir/plazo.toml` and starts `plazo serve` on it; waits for /readyz.
    pub fn start(dir: &Path, config_text: &str, port: u16) -> Daemon {
        let config = dir.join("plazo.toml");
        std::fs::write(&config, config_text).unwrap();
        Self::start_existing(dir, port)
    }

    /// Starts `plazo serve` on an existing `dir/plazo.toml`.
    pub fn start_existing(dir: &Path, port: u16) -> Daemon {
        let mut d = Self::spawn(dir, port, &[]);
        d.wait_ready();
        d
    }

    /// Starts `plazo serve` on an existing `dir/plazo.toml` with `env` added to its
    /// environment, and returns at once (a PostgreSQL standby does not answer until it leads).
    pub fn spawn(dir: &Path, port: u16, env: &[(&str, &str)]) -> Daemon {
        let config = dir.join("plazo.toml");
        put_on_test_store(dir, &config);
        let log = dir.join(format!(
            "daemon-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_plazo"));
        pass_listener(&mut cmd, port);
        let child = cmd
            .args(["serve", "--config"])
            .arg(&config)
            .current_dir(dir)
            .env("PLAZO_API_TOKEN", TOKEN)
            .env("PLAZO_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
            .env("WHATSAPP_ACCESS_TOKEN", WA_ACCESS_TOKEN)
            .env("WHATSAPP_APP_SECRET", WA_APP_SECRET)
            .env("WHATSAPP_VERIFY_TOKEN", WA_VERIFY_TOKEN)
            .env("STRIPE_WEBHOOK_SECRET", STRIPE_SECRET)
            .env("MERCADOPAGO_WEBHOOK_SECRET", MP_SECRET)
            .env("MERCADOPAGO_ACCESS_TOKEN", MP_TOKEN)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap();
        Daemon {
            child,
            base: format!("http://127.0.0.1:{port}"),
            token: TOKEN.into(),
            config,
            log,
        }
    }

    /// Waits for /readyz; fails at once, with the log, if the daemon exits instead (the test
    /// still holds the listening socket, so a connection would otherwise wait forever).
    fn wait_ready(&mut self) {
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "daemon exited ({status}) before it was ready; log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if let Ok(r) = reqwest::blocking_get(&format!("{}/readyz", self.base)) {
                if r == 200 {
                    self.assert_on_test_store();
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "daemon not ready; log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// The daemon opened the store this run is about (its "store open" line names it), unless
    /// its config chose one itself.
    fn assert_on_test_store(&self) {
        let config = std::fs::read_to_string(&self.config).unwrap_or_default();
        let chosen =
            config.lines().any(|l| l.trim() == "[store]") && !config.contains(TEST_STORE_MARK);
        if chosen {
            return;
        }
        let log = self.log_text();
        let line = log.lines().find(|l| l.contains("store open")).unwrap_or("");
        assert!(
            line.contains(test_backend()),
            "the daemon should run on {}: {line}",
            test_backend()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and wait; returns the exit status code.
    pub fn terminate(mut self) -> Option<i32> {
        unsafe_kill(self.child.id(), "TERM");
        let status = self.child.wait().unwrap();
        status.code()
    }

    /// SIGKILL and wait.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unsafe_kill(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Tiny blocking HTTP helpers built on reqwest's async client inside a private runtime.
pub mod reqwest {
    use std::sync::OnceLock;

    fn rt() -> &'static tokio::runtime::Runtime {
        static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
        RT.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
        })
    }

    fn client() -> &'static ::reqwest::Client {
        static C: OnceLock<::reqwest::Client> = OnceLock::new();
        C.get_or_init(::reqwest::Client::new)
    }

    /// GET without auth, giving up after 2 s; returns the status.
    pub fn blocking_get(url: &str) -> Result<u16, ::reqwest::Error> {
        rt().block_on(async {
            let req = client().get(url).timeout(std::time::Duration::from_secs(2));
            Ok(req.send().await?.status().as_u16())
        })
    }

    /// A request with a JSON (or raw) body and headers; returns (status, body as JSON or string).
    pub fn call(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> (u16, serde_json::Value) {
        rt().block_on(async {
            let m = ::reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let mut req = client().request(m, url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(b) = body {
                req = req
                    .header("content-type", "application/json")
                    .body(b.to_owned());
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
            (status, value)
        })
    }

    /// Runs a future on the helper runtime.
    pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
        rt().block_on(f)
    }

    /// Spawns a task on the helper runtime.
    pub fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(f: F) {
        rt().spawn(f);
    }

    /// A form POST (`application/x-www-form-urlencoded`); returns (status, body text).
    pub fn post_form(
        url: &str,
        headers: &[(&str, &str)],
        fields: &[(String, String)],
    ) -> (u16, String) {
        rt().block_on(async {
            let body: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(fields.iter())
                .finish();
            let mut req = client()
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap())
        })
    }

    /// A raw POST with a content type and headers; returns (status, body text).
    pub fn post_raw(url: &str, ctype: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
        rt().block_on(async {
            let mut req = client()
                .post(url)
                .header("content-type", ctype)
                .body(body.to_owned());
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap())
        })
    }
}

impl Daemon {
    /// Authenticated API call.
    /// GETs `path` until `pred` holds on the answer, for what the daemon records just after a
    /// side effect the test saw (a mail arrived: its "sent" line follows once the outcome is
    /// written); panics after 15 s naming `what`, with the answer and the log.
    pub fn wait_get(
        &self,
        path: &str,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            let (_, v) = self.api("GET", path, None);
            if pred(&v) {
                return v;
            }
            if Instant::now() > end {
                panic!(
                    "timed out waiting for {what}: {v:#}\nlog:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
        let auth = format!("Bearer {}", self.token);
        reqwest::call(
            method,
            &format!("{}{}", self.base, path),
            &[("authorization", &auth)],
            body,
        )
    }

    /// POSTs a Standard Webhooks payment event signed with [`WEBHOOK_SECRET`].
    pub fn payment_webhook(&self, id: &str, body: &str) -> (u16, serde_json::Value) {
        let secret =
            plazo::inbound::standard_webhooks::WebhookSecret::parse(WEBHOOK_SECRET).unwrap();
        let ts = jiff::Timestamp::now().as_second();
        let sig = plazo::inbound::standard_webhooks::sign(&secret, id, ts, body.as_bytes());
        let ts = ts.to_string();
        reqwest::call(
            "POST",
            &format!("{}/webhooks/payments", self.base),
            &[
                ("webhook-id", id),
                ("webhook-timestamp", &ts),
                ("webhook-signature", &sig),
            ],
            Some(body),
        )
    }
}

/// Writes a file, creating parent directories.
pub fn write(path: &Path, text: &str) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// One cadence step of a test policy, in TOML; its template is the step's name (the shipped
/// templates have `courtesy`, `due_today`, `friendly_overdue`, `firm_overdue`, `final_notice`),
/// and its tone is `firm` for names with "firm" in them, else `friendly`.
pub fn step(
    cadence: &str,
    name: &str,
    offset: &str,
    at: Option<&str>,
    channels: &[&str],
) -> String {
    let at = at.map(|a| format!("at = \"{a}\"\n")).unwrap_or_default();
    let channels: Vec<String> = channels.iter().map(|c| format!("\"{c}\"")).collect();
    let tone = if name.contains("firm") {
        "firm"
    } else {
        "friendly"
    };
    format!(
        "[[cadences.{cadence}.steps]]\nname = \"{name}\"\noffset = \"{offset}\"\n{at}channels = [{}]\ntemplate = \"{name}\"\ntone = \"{tone}\"\n\n",
        channels.join(", ")
    )
}

/// One email step of `cadence` sending `template` in `tone`.
pub fn email_step(cadence: &str, name: &str, offset: &str, template: &str, tone: &str) -> String {
    format!(
        "[[cadences.{cadence}.steps]]\nname = \"{name}\"\noffset = \"{offset}\"\nchannels = [\"email\"]\ntemplate = \"{template}\"\ntone = \"{tone}\"\n\n"
    )
}

/// One email step of `cadence` sending `template` in a firm tone.
pub fn firm_step(cadence: &str, name: &str, offset: &str, template: &str) -> String {
    email_step(cadence, name, offset, template, "firm")
}

/// A test policy using the shipped templates: `segments` each name a cadence of the same name
/// (the first is the default segment), `window` is `(from, to)` on every day.
pub fn test_policy(
    timezone: &str,
    locale: &str,
    window: (&str, &str),
    segments: &[&str],
    steps: &[String],
) -> String {
    let mut text = format!(
        r#"templates_dir = "{templates}"
default_segment = "{default}"

[defaults]
timezone = "{timezone}"
locale = "{locale}"
currency = "COP"
send_at = "09:00"
window = {{ days = "daily", from = "{from}", to = "{to}" }}

[company]
name = "Ferretería El Tornillo"
email = "cartera@tornillo.example.co"

"#,
        templates = repo().join("config/templates").display(),
        default = segments.first().copied().unwrap_or("standard"),
        from = window.0,
        to = window.1,
    );
    for s in segments {
        text.push_str(&format!("[segments.{s}]\ncadence = \"{s}\"\n\n"));
    }
    for s in steps {
        text.push_str(s);
    }
    text
}

/// Decodes quoted-printable and base64 text parts enough to search them.
pub fn decode_mail_text(raw: &str) -> String {
    let mut out = String::new();
    let unfolded = raw.replace("=\r\n", "").replace("=\n", "");
    // quoted-printable
    let bytes = unfolded.as_bytes();
    let mut i = 0;
    let mut buf = Vec::new();
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&unfolded[i + 1..i + 3], 16) {
                buf.push(b);
                i += 3;
                continue;
            }
        }
        buf.push(bytes[i]);
        i += 1;
    }
    out.push_str(&String::from_utf8_lossy(&buf));
    // base64 parts
    use base64::Engine;
    for block in raw.split("\r\n\r\n").skip(1) {
        let candidate: String = block.lines().take_while(|l| !l.starts_with("--")).collect();
        if let Ok(d) = base64::engine::general_purpose::STANDARD.decode(candidate.trim()) {
            out.push_str(&String::from_utf8_lossy(&d));
        }
    }
    out
}
