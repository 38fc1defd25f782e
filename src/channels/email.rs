//! Email over SMTP with lettre.
//!
//! [`build_message`] turns an [`Outbound`] into an RFC 5322 message (also used by the outbox
//! adapter, so an `.eml` there is byte-for-byte what SMTP would send, apart from `Date` and the
//! MIME boundary). [`EmailChannel`] sends it over a small pool of SMTP connections.
//!
//! # TCP_NODELAY
//!
//! lettre 0.11.23 never sets `TCP_NODELAY` on its sockets, so with `AsyncSmtpTransport` each
//! message waits for a delayed ACK (~40 ms): about 22 messages/s per connection whatever the
//! server. This module therefore keeps its own pool of [`AsyncSmtpConnection`]s whose sockets
//! are opened by Tokio with `set_nodelay(true)` and handed to lettre through
//! [`AsyncSmtpConnection::connect_with_transport`]; lettre still speaks SMTP, STARTTLS, TLS and
//! AUTH. Implicit TLS wraps the socket with lettre's own TLS upgrade before the greeting is read.
//! Once a lettre release sets `TCP_NODELAY` itself, the pool can go back to
//! `AsyncSmtpTransport`.

use std::io;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
#[allow(deprecated)]
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, Message};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::build::{BuildContext, ChannelBuildError, SecretSource, positive_duration, read_secret};
use super::channel::{Channel, ChannelError, Outbound, Receipt};
use super::smtp_config::{SmtpConfig, SmtpSecurity};
use crate::domain::validate::sanitize_line;

/// Default limit for connecting and for sending one message.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default number of SMTP connections.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 4;
/// Default idle time after which a pooled connection is closed instead of reused.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A pooled connection idle for longer than this is checked with `NOOP` before reuse.
const NOOP_AFTER_IDLE: Duration = Duration::from_secs(2);

/// Header-level settings of the messages a channel builds (sender, ids, unsubscribe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSettings {
    /// `From` (and envelope sender).
    pub from: Mailbox,
    /// `Reply-To`, if any.
    pub reply_to: Option<Mailbox>,
    /// Domain of generated `Message-ID`s.
    pub message_id_domain: String,
    /// Address for a `mailto:` entry in `List-Unsubscribe`, if any.
    pub unsubscribe_mailto: Option<Address>,
}

impl MessageSettings {
    /// Parses the settings; on error returns the offending config field and a reason.
    pub fn new(
        from: &str,
        reply_to: Option<&str>,
        message_id_domain: Option<&str>,
        unsubscribe_mailto: Option<&str>,
    ) -> Result<Self, (&'static str, String)> {
        let from: Mailbox = from.parse().map_err(|e| {
            (
                "from",
                format!(
                    "{from:?} is not a mailbox ({e}); write e.g. \"Cartera <cartera@example.co>\""
                ),
            )
        })?;
        let reply_to = reply_to
            .map(|r| {
                r.parse::<Mailbox>().map_err(|e| {
                    (
                        "reply_to",
                        format!("{r:?} is not a mailbox ({e}); write e.g. \"cobros@example.co\""),
                    )
                })
            })
            .transpose()?;
        let message_id_domain = match message_id_domain {
            Some(d) => {
                let ok = !d.is_empty()
                    && d.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
                if !ok {
                    return Err((
                        "message_id_domain",
                        format!("{d:?} is not a domain name; write e.g. \"example.co\""),
                    ));
                }
                d.to_owned()
            }
            None => from.email.domain().to_owned(),
        };
        let unsubscribe_mailto = unsubscribe_mailto
            .map(|a| {
                a.parse::<Address>().map_err(|e| {
                    (
                        "unsubscribe_mailto",
                        format!("{a:?} is not an email address ({e})"),
                    )
                })
            })
            .transpose()?;
        Ok(MessageSettings {
            from,
            reply_to,
            message_id_domain,
            unsubscribe_mailto,
        })
    }

    /// The `Message-ID` (with angle brackets) of the message carrying reminder `msg`.
    pub fn message_id(&self, msg: &Outbound) -> String {
        format!("<{}@{}>", msg.reminder_id, self.message_id_domain)
    }
}

/// Builds the RFC 5322 message for `msg`.
///
/// - `To`: `msg.to_name <msg.to>`; an invalid address is a permanent error.
/// - `Subject`: `msg.subject` (required; non-ASCII is RFC 2047-encoded by lettre).
/// - `Message-ID: <{reminder_id}@{message_id_domain}>`, so a retry carries the same id.
/// - Body: `multipart/alternative` (text/plain then text/html) when `msg.html` is set, else a
///   single text/plain part; both UTF-8, transfer encoding chosen by lettre.
/// - `List-Unsubscribe: <{unsubscribe_url}>` (plus `<mailto:...>` when configured) and
///   `List-Unsubscribe-Post: List-Unsubscribe=One-Click` when `msg.unsubscribe_url` is set;
///   `List-Unsubscribe: <mailto:...>` alone when only the mailto is configured.
///
/// Header text comes from stored records that may predate validation, so it is never trusted:
/// control characters (CR, LF, NUL...) in the display name and the subject become spaces and
/// their length is bounded ([`sanitize_line`]); and should lettre still panic on some input,
/// the panic is caught here and reported as a permanent error for this message. Never panics.
pub fn build_message(cfg: &MessageSettings, msg: &Outbound) -> Result<Message, ChannelError> {
    let to_addr: Address = msg.to.trim().parse().map_err(|e| {
        ChannelError::permanent(format!("invalid recipient address {:?}: {e}", msg.to))
    })?;
    let name = sanitize_line(&msg.to_name, MAX_DISPLAY_NAME_CHARS);
    let subject = msg
        .subject
        .as_deref()
        .map(|s| sanitize_line(s, MAX_SUBJECT_CHARS))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ChannelError::permanent("email message has no subject"))?;
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        assemble(cfg, msg, name, to_addr, &subject)
    }))
    .unwrap_or_else(|panic| {
        Err(ChannelError::permanent(format!(
            "cannot build email headers for recipient {:?} (the mail library panicked: {}); the message was not sent",
            msg.to,
            panic_text(panic.as_ref())
        )))
    })
}

/// The text of a caught panic payload.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "no message".to_owned()
    }
}

/// Serialises `message` for SMTP; a panic inside lettre becomes a permanent error.
pub fn format_message(message: &Message) -> Result<Vec<u8>, ChannelError> {
    std::panic::catch_unwind(AssertUnwindSafe(|| message.formatted())).map_err(|panic| {
        ChannelError::permanent(format!(
            "cannot serialise the email (the mail library panicked: {}); the message was not sent",
            panic_text(panic.as_ref())
        ))
    })
}

/// Longest display name put in `To`, in characters.
const MAX_DISPLAY_NAME_CHARS: usize = 200;
/// Longest subject, in characters.
const MAX_SUBJECT_CHARS: usize = 2000;

/// [`build_message`] once the header text is sanitised.
fn assemble(
    cfg: &MessageSettings,
    msg: &Outbound,
    name: String,
    to_addr: Address,
    subject: &str,
) -> Result<Message, ChannelError> {
    let to = Mailbox::new((!name.is_empty()).then_some(name), to_addr);

    let mut b = Message::builder()
        .from(cfg.from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(cfg.message_id(msg)));
    if let Some(r) = &cfg.reply_to {
        b = b.reply_to(r.clone());
    }
    if let Some(url) = &msg.unsubscribe_url {
        let url = url.trim();
        let ok = (url.starts_with("https://") || url.starts_with("http://"))
            && !url
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ','));
        if !ok {
            return Err(ChannelError::permanent(format!(
                "unsubscribe_url {url:?} is not an http(s) URL usable in List-Unsubscribe"
            )));
        }
        let mut value = format!("<{url}>");
        if let Some(m) = &cfg.unsubscribe_mailto {
            value.push_str(&format!(", <mailto:{m}?subject=unsubscribe>"));
        }
        b = b
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                value,
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_owned(),
            ));
    } else if let Some(m) = &cfg.unsubscribe_mailto {
        // Without an https URL there is no one-click POST: only the mailto form (RFC 2369).
        b = b.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe"),
            format!("<mailto:{m}?subject=unsubscribe>"),
        ));
    }
    let built = match &msg.html {
        Some(html) => b.multipart(MultiPart::alternative_plain_html(
            msg.text.clone(),
            html.clone(),
        )),
        None => b.singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(msg.text.clone()),
        ),
    };
    built.map_err(|e| ChannelError::permanent(format!("cannot build email: {e}")))
}

/// Maps a lettre SMTP error to a [`ChannelError`].
///
/// During a send: 5xx → permanent, 4xx / timeout / network → transient, client-side refusals
/// (e.g. the server lacks 8BITMIME) → permanent. While connecting (`setup`), everything is
/// transient: a failing connection, TLS or AUTH is about the channel, not the message, and must
/// not mark every queued reminder as undeliverable.
fn classify(err: &lettre::transport::smtp::Error, setup: bool) -> ChannelError {
    let phase = if setup { "smtp connect" } else { "smtp send" };
    let message = format!("{phase}: {err}");
    if setup {
        ChannelError::transient(message)
    } else if err.is_permanent() || err.is_client() {
        ChannelError::permanent(message)
    } else {
        ChannelError::transient(message)
    }
}

/// How to open one SMTP connection.
struct Connector {
    host: String,
    port: u16,
    security: SmtpSecurity,
    hello: ClientId,
    credentials: Option<Credentials>,
    timeout: Duration,
}

impl Connector {
    async fn connect(&self) -> Result<AsyncSmtpConnection, ChannelError> {
        let io_err = |what: &str, e: io::Error| {
            ChannelError::transient(format!(
                "smtp connect to {}:{}: {what}: {e}",
                self.host, self.port
            ))
        };
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| io_err("connection failed", e))?;
        tcp.set_nodelay(true)
            .map_err(|e| io_err("set TCP_NODELAY", e))?;
        let tls = || TlsParameters::new(self.host.clone()).map_err(|e| classify(&e, true));
        let mut conn = match self.security {
            SmtpSecurity::Tls => connect_wrapped(tcp, Some(tls()?), &self.hello)
                .await
                .map_err(|e| classify(&e, true))?,
            SmtpSecurity::Starttls | SmtpSecurity::Plain => {
                let mut conn =
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                        .await
                        .map_err(|e| classify(&e, true))?;
                if self.security == SmtpSecurity::Starttls {
                    conn.starttls(tls()?, &self.hello)
                        .await
                        .map_err(|e| classify(&e, true))?;
                }
                conn
            }
        };
        if let Some(c) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], c)
                .await
                .map_err(|e| classify(&e, true))?;
        }
        Ok(conn)
    }
}

/// Opens an SMTP session over `tcp` through lettre's stream type, upgrading it to TLS first when
/// `tls` is given (implicit TLS on our own `TCP_NODELAY` socket).
async fn connect_wrapped(
    tcp: TcpStream,
    tls: Option<TlsParameters>,
    hello: &ClientId,
) -> Result<AsyncSmtpConnection, lettre::transport::smtp::Error> {
    #[allow(deprecated)]
    let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
    if let Some(tls) = tls {
        stream.upgrade_tls(tls).await?;
    }
    AsyncSmtpConnection::connect_with_transport(Box::new(TokioCompat(stream)), hello).await
}

/// Adapts lettre's (futures-io) TLS stream to Tokio's I/O traits so that a TLS connection over
/// our own `TCP_NODELAY` socket can go through `connect_with_transport`.
#[allow(deprecated)]
#[derive(Debug)]
struct TokioCompat(AsyncNetworkStream);

impl AsyncRead for TokioCompat {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let slice = buf.initialize_unfilled();
        let n = ready!(futures::io::AsyncRead::poll_read(
            Pin::new(&mut self.0),
            cx,
            slice
        ))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TokioCompat {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        futures::io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures::io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures::io::AsyncWrite::poll_close(Pin::new(&mut self.0), cx)
    }
}

impl AsyncTokioStream for TokioCompat {
    fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.0.peer_addr()
    }
}

/// A bounded pool of SMTP connections (each carries one message at a time).
struct Pool {
    connector: Connector,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    permits: Semaphore,
    idle_timeout: Duration,
}

impl Pool {
    /// Takes a reusable idle connection, if any.
    async fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let (mut conn, since) = {
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                idle.pop()?
            };
            let idle_for = crate::clock::monotonic_now().saturating_duration_since(since);
            if idle_for > self.idle_timeout {
                let _ = tokio::time::timeout(Duration::from_secs(1), conn.quit()).await;
                continue;
            }
            if idle_for > NOOP_AFTER_IDLE
                && !tokio::time::timeout(self.connector.timeout, conn.test_connected())
                    .await
                    .unwrap_or(false)
            {
                continue;
            }
            return Some(conn);
        }
    }

    fn put_back(&self, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.push((conn, crate::clock::monotonic_now()));
    }

    async fn send(&self, message: &Message) -> Result<(), ChannelError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ChannelError::transient("smtp channel is shutting down"))?;
        let mut conn = match self.take_idle().await {
            Some(c) => c,
            None => tokio::time::timeout(self.connector.timeout, self.connector.connect())
                .await
                .map_err(|_| {
                    ChannelError::transient(format!(
                        "smtp connect to {}:{}: timed out after {:?}",
                        self.connector.host, self.connector.port, self.connector.timeout
                    ))
                })??,
        };
        let bytes = format_message(message)?;
        match tokio::time::timeout(
            self.connector.timeout,
            conn.send(message.envelope(), &bytes),
        )
        .await
        {
            Ok(Ok(_response)) => {
                self.put_back(conn);
                Ok(())
            }
            Ok(Err(e)) => Err(classify(&e, false)),
            Err(_) => Err(ChannelError::transient(format!(
                "smtp send: timed out after {:?}",
                self.connector.timeout
            ))),
        }
    }
}

/// The SMTP channel: builds each message with [`build_message`] and sends it over a pool of
/// `TCP_NODELAY` connections (see the module docs).
pub struct EmailChannel {
    name: String,
    settings: MessageSettings,
    pool: Pool,
}

impl EmailChannel {
    /// Builds the channel from its config (reads the password; does not connect yet).
    pub fn from_config(
        name: &str,
        cfg: &SmtpConfig,
        ctx: &BuildContext,
    ) -> Result<Self, ChannelBuildError> {
        let host = cfg.host.trim();
        if host.is_empty() {
            return Err(ChannelBuildError::invalid(
                name,
                "host",
                "must not be empty; write the SMTP server's host name",
            ));
        }
        let settings = message_settings(
            name,
            &cfg.from,
            cfg.reply_to.as_deref(),
            cfg.message_id_domain.as_deref(),
            cfg.unsubscribe_mailto.as_deref(),
        )?;
        let password = read_secret(
            name,
            &SecretSource {
                env_field: "password_env",
                env: cfg.password_env.as_deref(),
                file_field: "password_file",
                file: cfg.password_file.as_deref(),
            },
            ctx,
        )?;
        let credentials = match (&cfg.username, password) {
            (Some(u), Some(p)) => Some(Credentials::new(u.clone(), p)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ChannelBuildError::invalid(
                    name,
                    "username",
                    "is set but no password is; set password_env or password_file",
                ));
            }
            (None, Some(_)) => {
                return Err(ChannelBuildError::invalid(
                    name,
                    "username",
                    "a password is configured but no username; set username",
                ));
            }
        };
        if credentials.is_some() && cfg.security == SmtpSecurity::Plain && !is_loopback(host) {
            return Err(ChannelBuildError::invalid(
                name,
                "security",
                format!(
                    "\"plain\" would send the SMTP password unencrypted to {host}; use \
                     \"starttls\" or \"tls\" (plain with credentials is only allowed to localhost)"
                ),
            ));
        }
        let hello = match &cfg.hello_name {
            Some(h) if !h.trim().is_empty() => ClientId::Domain(h.trim().to_owned()),
            Some(_) => {
                return Err(ChannelBuildError::invalid(
                    name,
                    "hello_name",
                    "must not be empty; remove it to use the host name",
                ));
            }
            None => ClientId::default(),
        };
        let timeout = positive_duration(name, "timeout", cfg.timeout, DEFAULT_TIMEOUT)?;
        let idle_timeout =
            positive_duration(name, "idle_timeout", cfg.idle_timeout, DEFAULT_IDLE_TIMEOUT)?;
        let max = cfg.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
        if max == 0 || max > 1000 {
            return Err(ChannelBuildError::invalid(
                name,
                "max_connections",
                format!("{max} is out of range; use 1 to 1000 (default {DEFAULT_MAX_CONNECTIONS})"),
            ));
        }
        Ok(EmailChannel {
            name: name.to_owned(),
            settings,
            pool: Pool {
                connector: Connector {
                    host: host.to_owned(),
                    port: cfg.port.unwrap_or(cfg.security.default_port()),
                    security: cfg.security,
                    hello,
                    credentials,
                    timeout,
                },
                idle: Mutex::new(Vec::new()),
                permits: Semaphore::new(max as usize),
                idle_timeout,
            },
        })
    }

    /// The message settings this channel builds with.
    pub fn settings(&self) -> &MessageSettings {
        &self.settings
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Channel for EmailChannel {
    fn name(&self) -> &str {
        &self.name
    }
    fn adapter(&self) -> &'static str {
        "smtp"
    }
    fn send<'a>(&'a self, msg: &'a Outbound) -> BoxFuture<'a, Result<Receipt, ChannelError>> {
        Box::pin(async move {
            let message = build_message(&self.settings, msg)?;
            self.pool.send(&message).await?;
            Ok(Receipt {
                provider_message_id: Some(self.settings.message_id(msg)),
                note: None,
            })
        })
    }
}

/// Builds the message settings shared by the SMTP and outbox adapters.
pub(crate) fn message_settings(
    channel: &str,
    from: &str,
    reply_to: Option<&str>,
    message_id_domain: Option<&str>,
    unsubscribe_mailto: Option<&str>,
) -> Result<MessageSettings, ChannelBuildError> {
    MessageSettings::new(from, reply_to, message_id_domain, unsubscribe_mailto)
        .map_err(|(field, reason)| ChannelBuildError::invalid(channel, field, reason))
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, TcpListener};
    use std::sync::{Arc, Mutex};

    use mailin_embedded::response::{INTERNAL_ERROR, NO_MAILBOX, OK};
    use mailin_embedded::{Handler, Response, Server, SslConfig};

    use super::*;
    use crate::channels::config::ChannelConfig;
    use crate::channels::testutil::{ctx, decode_2047, email, header};

    #[derive(Debug, Clone, Default)]
    struct Mail {
        from: String,
        to: Vec<String>,
        data: Vec<u8>,
    }

    #[derive(Clone, Default)]
    struct Capture {
        mails: Arc<Mutex<Vec<Mail>>>,
        helos: Arc<Mutex<u32>>,
        current: Mail,
    }

    impl Handler for Capture {
        fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
            *self.helos.lock().unwrap() += 1;
            OK
        }
        fn rcpt(&mut self, to: &str) -> Response {
            if to.starts_with("reject@") {
                NO_MAILBOX
            } else if to.starts_with("busy@") {
                INTERNAL_ERROR
            } else {
                OK
            }
        }
        fn data_start(&mut self, _d: &str, from: &str, _8bit: bool, to: &[String]) -> Response {
            self.current = Mail {
                from: from.to_owned(),
                to: to.to_vec(),
                data: Vec::new(),
            };
            OK
        }
        fn data(&mut self, buf: &[u8]) -> io::Result<()> {
            self.current.data.extend_from_slice(buf);
            Ok(())
        }
        fn data_end(&mut self) -> Response {
            self.mails
                .lock()
                .unwrap()
                .push(std::mem::take(&mut self.current));
            OK
        }
    }

    /// Starts a real SMTP server on a free loopback port.
    fn smtp_server() -> (u16, Capture) {
        let capture = Capture::default();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut server = Server::new(capture.clone());
        server
            .with_name("mx.test")
            .with_ssl(SslConfig::None)
            .unwrap()
            .with_tcp_listener(listener);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        (port, capture)
    }

    fn channel(port: u16) -> crate::channels::SharedChannel {
        let toml = format!(
            "type = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"plain\"\n\
             from = \"Cartera <cartera@example.co>\"\nreply_to = \"cobros@example.co\"\n\
             unsubscribe_mailto = \"baja@example.co\"\nhello_name = \"plazo.test\"\ntimeout = \"5s\"\n"
        );
        let cfg: ChannelConfig = toml::from_str(&toml).unwrap();
        let dir = tempfile::tempdir().unwrap();
        cfg.build("mail", &ctx(dir.path(), &[])).unwrap()
    }

    #[tokio::test]
    async fn sends_a_well_formed_reminder_over_real_smtp() {
        let (port, cap) = smtp_server();
        let ch = channel(port);
        assert_eq!((ch.name(), ch.adapter()), ("mail", "smtp"));
        let msg = email("ana@cliente.example", 1);
        let receipt = ch.send(&msg).await.unwrap();
        let expected_id = format!("<{}@example.co>", msg.reminder_id);
        assert_eq!(
            receipt.provider_message_id.as_deref(),
            Some(expected_id.as_str())
        );

        let mails = cap.mails.lock().unwrap().clone();
        assert_eq!(mails.len(), 1);
        let m = &mails[0];
        assert_eq!(m.from, "cartera@example.co");
        assert_eq!(m.to, vec!["ana@cliente.example".to_owned()]);
        let raw = String::from_utf8(m.data.clone()).unwrap();
        assert!(raw.is_ascii(), "message must be 7-bit clean");
        assert_eq!(
            decode_2047(&header(&raw, "Subject").unwrap()),
            "Recordatorio: factura vencida — ¿ya pagó?"
        );
        assert_eq!(header(&raw, "Message-ID").unwrap(), expected_id);
        assert_eq!(
            header(&raw, "From").unwrap(),
            "Cartera <cartera@example.co>"
        );
        assert_eq!(header(&raw, "Reply-To").unwrap(), "cobros@example.co");
        assert!(decode_2047(&header(&raw, "To").unwrap()).contains("<ana@cliente.example>"));
        assert!(header(&raw, "Date").is_some());
        assert_eq!(
            header(&raw, "List-Unsubscribe").unwrap(),
            "<https://pay.example.co/u/tok_Zx81>, <mailto:baja@example.co?subject=unsubscribe>"
        );
        assert_eq!(
            header(&raw, "List-Unsubscribe-Post").unwrap(),
            "List-Unsubscribe=One-Click"
        );
        let ct = header(&raw, "Content-Type").unwrap();
        assert!(ct.starts_with("multipart/alternative;"), "{ct}");
        let plain = raw.find("Content-Type: text/plain; charset=utf-8").unwrap();
        let html = raw.find("Content-Type: text/html; charset=utf-8").unwrap();
        assert!(plain < html, "text/plain must come before text/html");
        assert!(raw.contains("la factura INV-2024-001 vence hoy."));

        // A second message reuses the pooled connection; the Message-ID follows the reminder.
        let msg2 = email("ana@cliente.example", 2);
        let r2 = ch.send(&msg2).await.unwrap();
        assert_ne!(r2, receipt);
        assert_eq!(
            ch.send(&msg).await.unwrap(),
            receipt,
            "a retry carries the same id"
        );
        assert_eq!(cap.mails.lock().unwrap().len(), 3);
        assert_eq!(
            *cap.helos.lock().unwrap(),
            1,
            "one connection for three messages"
        );
    }

    #[tokio::test]
    async fn smtp_replies_are_classified() {
        let (port, cap) = smtp_server();
        let ch = channel(port);
        let err = ch
            .send(&email("reject@cliente.example", 1))
            .await
            .unwrap_err();
        assert!(err.is_permanent(), "{err}");
        assert!(err.to_string().contains("550"), "{err}");
        let err = ch
            .send(&email("busy@cliente.example", 1))
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(err.to_string().contains("451"), "{err}");
        // The aborted connections are not reused: the next message still goes out.
        ch.send(&email("ana@cliente.example", 1)).await.unwrap();
        assert_eq!(cap.mails.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn connection_refused_is_transient_and_bad_address_permanent() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let ch = channel(port);
        let err = ch.send(&email("ana@cliente.example", 1)).await.unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(err.to_string().contains("connection failed"), "{err}");
        let err = ch.send(&email("not an address", 1)).await.unwrap_err();
        assert!(err.is_permanent(), "{err}");
        assert!(err.to_string().contains("invalid recipient"), "{err}");
    }

    fn settings() -> MessageSettings {
        MessageSettings::new("Cartera <cartera@example.co>", None, None, None).unwrap()
    }

    #[test]
    fn text_only_message_has_no_multipart_and_no_unsubscribe_without_url() {
        let mut msg = email("ana@cliente.example", 1);
        msg.html = None;
        msg.unsubscribe_url = None;
        let raw = String::from_utf8(build_message(&settings(), &msg).unwrap().formatted()).unwrap();
        assert_eq!(
            header(&raw, "Content-Type").unwrap(),
            "text/plain; charset=utf-8"
        );
        assert!(header(&raw, "List-Unsubscribe").is_none());
        assert!(header(&raw, "List-Unsubscribe-Post").is_none());
        assert!(header(&raw, "Reply-To").is_none());
        // With only a mailto configured: the mailto form, and no one-click POST header.
        let with_mailto = MessageSettings::new(
            "Cartera <cartera@example.co>",
            None,
            None,
            Some("baja@example.co"),
        )
        .unwrap();
        let raw =
            String::from_utf8(build_message(&with_mailto, &msg).unwrap().formatted()).unwrap();
        assert_eq!(
            header(&raw, "List-Unsubscribe").unwrap(),
            "<mailto:baja@example.co?subject=unsubscribe>"
        );
        assert!(header(&raw, "List-Unsubscribe-Post").is_none());
    }

    #[test]
    fn message_settings_and_bad_inputs() {
        let s =
            MessageSettings::new("a@mail.example.co", None, Some("ids.example.co"), None).unwrap();
        assert_eq!(s.message_id_domain, "ids.example.co");
        assert_eq!(settings().message_id_domain, "example.co");
        assert_eq!(
            MessageSettings::new("nope", None, None, None)
                .unwrap_err()
                .0,
            "from"
        );
        assert_eq!(
            MessageSettings::new("a@b.co", Some("x"), None, None)
                .unwrap_err()
                .0,
            "reply_to"
        );
        assert_eq!(
            MessageSettings::new("a@b.co", None, Some("bad domain>"), None)
                .unwrap_err()
                .0,
            "message_id_domain"
        );
        let mut msg = email("ana@cliente.example", 1);
        msg.unsubscribe_url = Some("https://x.example/u\r\nBcc: evil@x".to_owned());
        assert!(build_message(&settings(), &msg).unwrap_err().is_permanent());
        let mut msg = email("ana@cliente.example", 1);
        msg.subject = None;
        assert!(build_message(&settings(), &msg).unwrap_err().is_permanent());
    }

    /// The header block of `raw`: every physical line is a `Name: value` header or a folded
    /// continuation (starting with a space or tab), and no header other than the expected ones
    /// was injected.
    fn assert_clean_headers(raw: &[u8]) {
        let raw = String::from_utf8(raw.to_vec()).unwrap();
        let head = raw.split("\r\n\r\n").next().unwrap();
        assert!(!head.contains('\0'), "NUL in headers: {head:?}");
        for line in head.split("\r\n") {
            assert!(!line.contains(['\r', '\n']), "bare CR or LF in {line:?}");
            if line.starts_with([' ', '\t']) {
                continue;
            }
            let (name, _) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("not a header: {line:?}"));
            let known = [
                "From",
                "Reply-To",
                "To",
                "Subject",
                "Message-ID",
                "Date",
                "MIME-Version",
                "Content-Type",
                "Content-Transfer-Encoding",
                "List-Unsubscribe",
                "List-Unsubscribe-Post",
            ];
            assert!(known.contains(&name), "unexpected header {line:?}");
        }
    }

    #[test]
    fn hostile_display_names_and_subjects_never_panic_or_inject_headers() {
        let hostile = [
            "Ana\nB",
            "Ana\r\nBcc: victim@example.co",
            "Ana\0B",
            "\r\n\r\n",
            "\u{2028}Ana\u{2029}",
            "\u{202e}anA\u{200f}",
            "\"quoted\" \\ <x@y.co>, z@w.co",
            "",
        ];
        for name in hostile {
            let mut msg = email("ana@cliente.example", 1);
            msg.to_name = name.to_owned();
            msg.subject = Some(format!("Hola {name}, factura\r\nBcc: x@y.co"));
            let m = build_message(&settings(), &msg).unwrap_or_else(|e| panic!("{name:?}: {e}"));
            let raw = format_message(&m).unwrap();
            assert_clean_headers(&raw);
            assert_eq!(m.envelope().to(), [msg.to.parse::<Address>().unwrap()]);
        }
        let mut msg = email("ana@cliente.example", 1);
        msg.to_name = "x".repeat(10_000);
        let raw = format_message(&build_message(&settings(), &msg).unwrap()).unwrap();
        assert_clean_headers(&raw);
        // A subject that is nothing but control characters is no subject.
        msg.subject = Some("\r\n\0".to_owned());
        assert!(build_message(&settings(), &msg).unwrap_err().is_permanent());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn any_name_and_subject_build_a_clean_message(
            name in "(\\PC|[\r\n\0\t\u{2028}\u{200f}\u{202e}\"<>,;:@\\\\])*",
            subject in "(\\PC|[\r\n\0\t])*",
        ) {
            let mut msg = email("ana@cliente.example", 1);
            msg.to_name = name;
            msg.subject = Some(format!("x{subject}"));
            let m = build_message(&settings(), &msg).unwrap();
            assert_clean_headers(&format_message(&m).unwrap());
        }
    }

    /// The implicit-TLS path goes through `TokioCompat`; exercise that adapter over plain TCP
    /// (no TLS server is available in tests).
    #[tokio::test]
    async fn compat_stream_speaks_smtp() {
        let (port, cap) = smtp_server();
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let hello = ClientId::Domain("plazo.test".to_owned());
        let mut conn = connect_wrapped(tcp, None, &hello).await.unwrap();
        let m = build_message(&settings(), &email("ana@cliente.example", 1)).unwrap();
        conn.send(m.envelope(), &m.formatted()).await.unwrap();
        conn.send(m.envelope(), &m.formatted()).await.unwrap();
        conn.quit().await.unwrap();
        assert_eq!(cap.mails.lock().unwrap().len(), 2);
        // What arrives is the message plus the CRLF that precedes the final ".".
        assert_eq!(
            cap.mails.lock().unwrap()[0].data,
            [m.formatted(), b"\r\n".to_vec()].concat()
        );
    }

    /// Measures sequential messages/s over one connection: this pool (TCP_NODELAY) against
    /// lettre's own `AsyncSmtpTransport`. Run with
    /// `cargo test --lib nodelay_throughput -- --ignored --nocapture`.
    #[tokio::test]
    #[ignore = "benchmark"]
    async fn nodelay_throughput() {
        use lettre::AsyncTransport as _;
        let n = 100u32;
        let (port, _cap) = smtp_server();
        let ch = channel(port);
        ch.send(&email("ana@cliente.example", 0)).await.unwrap();
        let t = crate::clock::monotonic_now();
        for i in 0..n {
            ch.send(&email("ana@cliente.example", i)).await.unwrap();
        }
        let ours = f64::from(n) / crate::clock::elapsed_since(t).as_secs_f64();

        let lettre =
            lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1")
                .port(port)
                .build();
        let s = settings();
        let m = build_message(&s, &email("ana@cliente.example", 0)).unwrap();
        lettre.send(m).await.unwrap();
        let t = crate::clock::monotonic_now();
        for i in 0..n {
            let m = build_message(&s, &email("ana@cliente.example", i)).unwrap();
            lettre.send(m).await.unwrap();
        }
        let theirs = f64::from(n) / crate::clock::elapsed_since(t).as_secs_f64();
        println!(
            "one connection, sequential: nodelay pool {ours:.0} msg/s, lettre AsyncSmtpTransport {theirs:.0} msg/s"
        );
    }
}
