//! A minimal SMTP receiver for the benches: the stand-in for a local relay (Postfix
//! `smtp-sink`, aiosmtpd) that the `email` dispatch scenario sends to.
//!
//! Tokio on `127.0.0.1:0`, from its own thread and its own runtime (separate from whatever
//! sends), one task per connection, any number of connections at once. It speaks what lettre
//! needs: the `220` greeting, `EHLO`/`HELO` (advertising `8BITMIME`, `SMTPUTF8` and `SIZE`,
//! no `STARTTLS`, no `AUTH`), `MAIL`, `RCPT`, `DATA`, `RSET`, `NOOP`, `QUIT`, in order (a
//! command out of sequence gets `503`, an unknown one `502`). Every message is read to its
//! terminating `.` line; its header section must carry a `Message-ID` and a `Subject` naming
//! the invoice `F-{i}`. An accepted message gets `250` and is recorded as an
//! [`Arrival`] in [`MockState::smtp`] (the wall-clock time the final `.` was read, and `i`);
//! its `Message-ID` goes to [`MockState::smtp_message_ids`]. A message that fails a check gets
//! `554` and is counted in [`MockState::rejected`]. Nothing is stored or relayed.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use jiff::Timestamp;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::providers::{Arrival, MockState};

/// The recipient every benchmark reminder goes to (client `c1`).
pub const RECIPIENT: &str = "ana@example.co";

const GREETING: &[u8] = b"220 sink.bench.local ESMTP plazo bench sink\r\n";
const EHLO_REPLY: &[u8] =
    b"250-sink.bench.local\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n";
const HELO_REPLY: &[u8] = b"250 sink.bench.local\r\n";
const OK: &[u8] = b"250 2.0.0 OK\r\n";
const QUEUED: &[u8] = b"250 2.0.0 OK queued\r\n";
const START_DATA: &[u8] = b"354 End data with <CR><LF>.<CR><LF>\r\n";
const BYE: &[u8] = b"221 2.0.0 Bye\r\n";
const BAD_SEQUENCE: &[u8] = b"503 5.5.1 Bad sequence of commands\r\n";
const UNKNOWN: &[u8] = b"502 5.5.2 Command not recognized\r\n";
const BAD_RECIPIENT: &[u8] = b"550 5.1.1 No such user here\r\n";
const REFUSED: &[u8] = b"554 5.6.0 Message refused by the bench sink\r\n";

/// Starts the sink on its own thread: `threads` = 0 runs a current-thread runtime, otherwise a
/// multi-thread runtime with that many workers. Arrivals go to `state`. Returns its address.
pub fn start(state: Arc<MockState>, threads: usize) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("smtp-sink".into())
        .spawn(move || {
            let rt = if threads == 0 {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
            } else {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads)
                    .thread_name("smtp-sink-rt")
                    .enable_all()
                    .build()
                    .unwrap()
            };
            rt.block_on(async move {
                let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(l.local_addr().unwrap()).unwrap();
                loop {
                    let Ok((s, _)) = l.accept().await else {
                        continue;
                    };
                    let st = state.clone();
                    tokio::spawn(async move {
                        let _ = session(s, st).await;
                    });
                }
            });
        })
        .unwrap();
    rx.recv().unwrap()
}

/// The command verb of `line`, upper-cased (`b"MAIL"`), or empty.
fn verb(line: &[u8]) -> [u8; 4] {
    let mut v = [0u8; 4];
    for (d, s) in v.iter_mut().zip(line) {
        *d = s.to_ascii_uppercase();
    }
    v
}

/// The address between `<` and `>` in a `MAIL FROM:` / `RCPT TO:` line.
fn angle_addr(line: &[u8]) -> Option<&[u8]> {
    let open = line.iter().position(|&b| b == b'<')?;
    let close = open + line[open..].iter().position(|&b| b == b'>')?;
    Some(&line[open + 1..close])
}

/// The index `i` after the first `F-` in `s`.
fn invoice_index(s: &[u8]) -> Option<usize> {
    let at = s.windows(2).position(|w| w == b"F-")? + 2;
    let digits = s[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&s[at..at + digits]).ok()?.parse().ok()
}

/// Whether `line` starts with header name `name` (case-insensitive) followed by `:`.
fn is_header(line: &[u8], name: &[u8]) -> bool {
    line.len() > name.len()
        && line[..name.len()].eq_ignore_ascii_case(name)
        && line[name.len()] == b':'
}

/// What the header section of one message carried.
#[derive(Default)]
struct Headers {
    subject: Vec<u8>,
    message_id: Option<String>,
}

/// One SMTP session.
async fn session(stream: TcpStream, st: Arc<MockState>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::with_capacity(64 * 1024, r);
    w.write_all(GREETING).await?;
    let mut line = Vec::with_capacity(1024);
    let (mut hello, mut mail, mut rcpts) = (false, false, 0usize);
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let reply: &[u8] = match &verb(&line) {
            b"EHLO" | b"HELO" => {
                hello = true;
                (mail, rcpts) = (false, 0);
                if line[..4].eq_ignore_ascii_case(b"EHLO") {
                    EHLO_REPLY
                } else {
                    HELO_REPLY
                }
            }
            b"MAIL" if hello && !mail => {
                mail = true;
                OK
            }
            b"RCPT" if mail => {
                if angle_addr(&line).is_some_and(|a| a.eq_ignore_ascii_case(RECIPIENT.as_bytes())) {
                    rcpts += 1;
                    OK
                } else {
                    st.rejected.fetch_add(1, Ordering::Relaxed);
                    *st.last_rejection.lock().unwrap() =
                        format!("smtp: {}", String::from_utf8_lossy(&line).trim_end());
                    BAD_RECIPIENT
                }
            }
            b"DATA" if rcpts > 0 => {
                w.write_all(START_DATA).await?;
                let reply = read_data(&mut r, &mut line, &st).await?;
                (mail, rcpts) = (false, 0);
                reply
            }
            b"RSET" => {
                (mail, rcpts) = (false, 0);
                OK
            }
            b"NOOP" => OK,
            b"QUIT" => {
                w.write_all(BYE).await?;
                return Ok(());
            }
            b"MAIL" | b"RCPT" | b"DATA" => BAD_SEQUENCE,
            _ => UNKNOWN,
        };
        w.write_all(reply).await?;
    }
}

/// Reads one message up to its `.` line, checks and records it; returns the reply.
async fn read_data(
    r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    line: &mut Vec<u8>,
    st: &MockState,
) -> std::io::Result<&'static [u8]> {
    let mut h = Headers::default();
    let mut in_headers = true;
    let mut in_subject = false;
    loop {
        line.clear();
        if r.read_until(b'\n', line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            break;
        }
        if !in_headers {
            continue;
        }
        if line == b"\r\n" || line == b"\n" {
            in_headers = false;
        } else if line[0] == b' ' || line[0] == b'\t' {
            if in_subject {
                h.subject.extend_from_slice(line);
            }
        } else {
            in_subject = is_header(line, b"Subject");
            if in_subject {
                h.subject.extend_from_slice(&line[8..]);
            } else if is_header(line, b"Message-ID") {
                h.message_id = Some(String::from_utf8_lossy(&line[11..]).trim().to_owned());
            }
        }
    }
    let at_us = Timestamp::now().as_microsecond();
    let key = invoice_index(&h.subject);
    match (key, h.message_id) {
        (Some(key), Some(id)) if id.starts_with('<') && id.ends_with('>') => {
            st.smtp.lock().unwrap().push(Arrival {
                at_us,
                key: Some(key),
            });
            st.smtp_message_ids.lock().unwrap().insert(id);
            Ok(QUEUED)
        }
        (key, id) => {
            st.rejected.fetch_add(1, Ordering::Relaxed);
            *st.last_rejection.lock().unwrap() = format!(
                "smtp: subject {:?} (index {key:?}), Message-ID {id:?}",
                String::from_utf8_lossy(&h.subject)
            );
            Ok(REFUSED)
        }
    }
}
