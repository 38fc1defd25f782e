//! The API's listening socket: handed over by systemd (socket activation) or bound here.
//!
//! With socket activation (`deploy/plazo.socket`), systemd binds the port, starts plazo on the
//! first connection and passes the socket as file descriptor 3 with `LISTEN_FDS=1` (and
//! `LISTEN_PID` = plazo's pid). Tests use the same protocol to hand the daemon a socket they
//! bound themselves, so no test races for a free port.

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::TcpListener;

use super::DaemonError;

/// The first file descriptor passed by the socket-activation protocol.
const SD_LISTEN_FDS_START: RawFd = 3;

/// Set once fd 3 was taken: a second daemon started in the same process binds `listen`
/// instead of wrapping the same descriptor twice.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// What the environment says about a passed socket.
#[derive(Debug, PartialEq, Eq)]
enum Activation {
    /// No socket was passed (or it was meant for another process).
    None,
    /// One socket, at fd 3.
    One,
}

/// Reads `LISTEN_FDS` / `LISTEN_PID` (the values given, `pid` being this process's id).
fn activation(
    listen_fds: Option<&str>,
    listen_pid: Option<&str>,
    pid: u32,
) -> Result<Activation, String> {
    let Some(fds) = listen_fds else {
        return Ok(Activation::None);
    };
    if let Some(p) = listen_pid {
        if p.trim().parse::<u32>().ok() != Some(pid) {
            return Ok(Activation::None);
        }
    }
    match fds.trim().parse::<u32>() {
        Ok(0) => Ok(Activation::None),
        Ok(1) => Ok(Activation::One),
        Ok(n) => Err(format!(
            "LISTEN_FDS={n}: plazo listens on exactly one socket; give the .socket unit one ListenStream"
        )),
        Err(_) => Err(format!("LISTEN_FDS={fds:?} is not a number")),
    }
}

/// The listener: the socket passed by systemd when there is one, else `listen` bound here.
pub(super) async fn listener(listen: SocketAddr) -> Result<TcpListener, DaemonError> {
    let env_fds = std::env::var("LISTEN_FDS").ok();
    let env_pid = std::env::var("LISTEN_PID").ok();
    let io = |context: String| move |source| DaemonError::Io { context, source };
    match activation(env_fds.as_deref(), env_pid.as_deref(), std::process::id()) {
        Err(message) => Err(DaemonError::Io {
            context: "socket activation".into(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, message),
        }),
        Ok(Activation::One) if !TAKEN.swap(true, Ordering::SeqCst) => {
            // SAFETY: the socket-activation protocol hands this process fd 3 open and owned by
            // it (LISTEN_FDS=1, LISTEN_PID absent or ours); nothing else in plazo uses fd 3.
            #[allow(unsafe_code)]
            let std_listener = unsafe { std::net::TcpListener::from_raw_fd(SD_LISTEN_FDS_START) };
            // Fails unless fd 3 really is a listening TCP socket.
            let addr = std_listener
                .local_addr()
                .map_err(io("socket activation: fd 3 is not a TCP socket".into()))?;
            std_listener
                .set_nonblocking(true)
                .map_err(io("socket activation: making fd 3 non-blocking".into()))?;
            tracing::info!(%addr, "listening on the socket passed by systemd (LISTEN_FDS)");
            TcpListener::from_std(std_listener)
                .map_err(io("socket activation: registering fd 3".into()))
        }
        Ok(_) => TcpListener::bind(listen)
            .await
            .map_err(io(format!("listening on {listen}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_fds_and_pid_select_the_passed_socket() {
        assert_eq!(activation(None, None, 7), Ok(Activation::None));
        assert_eq!(activation(Some("1"), None, 7), Ok(Activation::One));
        assert_eq!(activation(Some("1"), Some("7"), 7), Ok(Activation::One));
        assert_eq!(activation(Some("1"), Some("8"), 7), Ok(Activation::None));
        assert_eq!(activation(Some("0"), None, 7), Ok(Activation::None));
        assert!(activation(Some("2"), None, 7).is_err());
        assert!(activation(Some("x"), None, 7).is_err());
    }
}
