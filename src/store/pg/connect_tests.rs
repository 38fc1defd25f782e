//! Connecting: TLS under each `sslmode` against real servers (the plain test server and the
//! TLS one, see [`super::testing`]), and the default connect timeout.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use super::super::pg_backend::PgBackend;
use super::PgConfig;
use super::testing::{TlsDatabase, new_database, new_tls_database};
use crate::store::{Store, StoreOptions};

/// Whether the session `url` opens is encrypted, by the server's account (`pg_stat_ssl`).
/// Runs on a thread of its own (the synchronous client).
fn encrypted(url: &str) -> Result<bool, String> {
    let config = PgConfig::parse(url).map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        let mut c = config.connect().map_err(|e| e.to_string())?;
        c.query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .map(|r| r.get::<_, bool>(0))
        .map_err(|e| e.to_string())
    })
    .join()
    .unwrap()
}

fn tls_db() -> Option<TlsDatabase> {
    new_tls_database().unwrap()
}

fn with(db: &TlsDatabase, query: &str) -> String {
    format!("{}?{query}", db.url)
}

#[test]
fn verify_full_with_the_right_ca_is_encrypted() {
    let Some(db) = tls_db() else { return };
    let url = with(
        &db,
        &format!("sslmode=verify-full&sslrootcert={}", db.ca.display()),
    );
    assert_eq!(encrypted(&url), Ok(true));
    // By address too: the certificate names 127.0.0.1.
    let by_ip = format!(
        "postgresql://plazo@127.0.0.1:{}/{}?sslmode=verify-full&sslrootcert={}",
        db.port,
        db.name,
        db.ca.display()
    );
    assert_eq!(encrypted(&by_ip), Ok(true));
    // The key=value form reads the same parameters.
    let kv = format!(
        "host=localhost port={} user=plazo dbname={} sslmode=verify-full sslrootcert='{}'",
        db.port,
        db.name,
        db.ca.display()
    );
    assert_eq!(encrypted(&kv), Ok(true));
}

#[test]
fn verify_full_with_a_wrong_ca_fails_clearly_and_writes_nothing() {
    let Some(db) = tls_db() else { return };
    let url = with(
        &db,
        &format!("sslmode=verify-full&sslrootcert={}", db.other_ca.display()),
    );
    let err = PgBackend::open(&url, StoreOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("certificate failed verification under sslmode=verify-full")
            && err.contains("not signed by a trusted root")
            && err.contains("check that sslrootcert names the CA")
            && err.contains("sslmode=require"),
        "{err}"
    );
    // Nothing reached the database: no migration ran.
    let plain = with(&db, "sslmode=disable");
    let config = PgConfig::parse(&plain).unwrap();
    let migrated = std::thread::spawn(move || {
        let mut c = config.connect().unwrap();
        c.query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
            .unwrap()
            .get::<_, bool>(0)
    })
    .join()
    .unwrap();
    assert!(!migrated, "a refused server was written to");
}

#[test]
fn verify_full_checks_the_name_and_verify_ca_does_not() {
    let Some(db) = tls_db() else { return };
    // The certificate is for localhost and 127.0.0.1; connect to 127.0.0.1 under another name.
    let url = |mode: &str| {
        format!(
            "postgresql://plazo@db.invalid:{}/{}?hostaddr=127.0.0.1&sslmode={mode}&sslrootcert={}",
            db.port,
            db.name,
            db.ca.display()
        )
    };
    let err = encrypted(&url("verify-full")).unwrap_err();
    assert!(
        err.contains("failed verification") && err.contains("sslmode=verify-ca"),
        "{err}"
    );
    assert_eq!(encrypted(&url("verify-ca")), Ok(true));
    // verify-ca still checks the chain.
    let wrong = format!(
        "postgresql://plazo@localhost:{}/{}?sslmode=verify-ca&sslrootcert={}",
        db.port,
        db.name,
        db.other_ca.display()
    );
    let err = encrypted(&wrong).unwrap_err();
    assert!(
        err.contains("failed verification under sslmode=verify-ca"),
        "{err}"
    );
}

#[test]
fn require_encrypts_and_verifies_only_with_a_root_file() {
    let Some(db) = tls_db() else { return };
    assert_eq!(encrypted(&with(&db, "sslmode=require")), Ok(true));
    // As libpq: require with sslrootcert checks the chain.
    let wrong = with(
        &db,
        &format!("sslmode=require&sslrootcert={}", db.other_ca.display()),
    );
    let err = encrypted(&wrong).unwrap_err();
    assert!(
        err.contains("failed verification under sslmode=require")
            && err.contains("leave sslrootcert out"),
        "{err}"
    );
}

#[test]
fn prefer_is_the_default_and_falls_back_to_plain() {
    let Some(db) = tls_db() else { return };
    assert_eq!(encrypted(&with(&db, "sslmode=prefer")), Ok(true));
    assert_eq!(encrypted(&db.url), Ok(true), "prefer is the default");
    let Some(plain) = new_database().unwrap() else {
        return;
    };
    assert_eq!(encrypted(&plain), Ok(false));
    assert_eq!(encrypted(&format!("{plain}?sslmode=prefer")), Ok(false));
}

#[test]
fn require_against_a_server_without_tls_fails_clearly() {
    let Some(plain) = new_database().unwrap() else {
        return;
    };
    for mode in ["require", "verify-full"] {
        let err = PgBackend::open(&format!("{plain}?sslmode={mode}"), StoreOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("does not accept TLS connections")
                && err.contains(&format!("sslmode={mode} requires TLS")),
            "{err}"
        );
    }
}

#[test]
fn disable_is_plain_even_on_a_tls_server() {
    let Some(db) = tls_db() else { return };
    assert_eq!(encrypted(&with(&db, "sslmode=disable")), Ok(false));
}

#[test]
fn a_store_opens_writes_and_reopens_over_verify_full() {
    let Some(db) = tls_db() else { return };
    let url = with(
        &db,
        &format!("sslmode=verify-full&sslrootcert={}", db.ca.display()),
    );
    let open = || {
        Store::with_backend(std::sync::Arc::new(
            PgBackend::open(&url, StoreOptions::default()).unwrap(),
        ))
    };
    let store = open();
    let c = crate::store::conformance::client("over-tls");
    store
        .transaction::<_, std::convert::Infallible>(|tx| Ok(tx.put_client(&c)?))
        .unwrap()
        .unwrap();
    drop(store);
    let again = open();
    assert_eq!(again.client(&c.id).unwrap(), Some(c));
    assert_eq!(again.leader_epoch(), Some(2));
}

/// A loopback port that never answers a connection: a listener whose accept queue (length 1)
/// is full, so the kernel drops further SYNs, as a black-holed host does.
#[cfg(target_os = "linux")]
fn black_hole() -> (u16, Vec<std::net::TcpStream>, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor this function owns.
    let (fd, port) = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(libc::bind(fd, (&raw const addr).cast(), len), 0);
        assert_eq!(libc::listen(fd, 0), 0);
        let mut bound: libc::sockaddr_in = std::mem::zeroed();
        let mut blen = len;
        assert_eq!(libc::getsockname(fd, (&raw mut bound).cast(), &mut blen), 0);
        (
            std::os::fd::OwnedFd::from_raw_fd(fd),
            u16::from_be(bound.sin_port),
        )
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut held = Vec::new();
    for _ in 0..4 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => held.push(s),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return (port, held, fd);
            }
            Err(e) => panic!("filling the accept queue: {e}"),
        }
    }
    panic!("the accept queue never filled");
}

/// How `url` fails to connect, and after how long.
fn failure(url: &str) -> (String, Duration) {
    let config = PgConfig::parse(url).unwrap();
    let started = crate::clock::monotonic_now();
    let err = std::thread::spawn(move || config.connect().err().map(|e| e.to_string()))
        .join()
        .unwrap()
        .expect("a black hole accepted a connection");
    (
        err,
        crate::clock::monotonic_now().saturating_duration_since(started),
    )
}

#[test]
#[cfg(target_os = "linux")]
fn a_host_that_never_answers_times_out_by_default() {
    let (port, _held, _fd) = black_hole();
    // No connect_timeout in the URL: the default.
    let (err, took) = failure(&format!(
        "postgresql://plazo@127.0.0.1:{port}/none?sslmode=disable"
    ));
    assert!(
        err.contains("no answer within 10s") && err.contains("connect_timeout"),
        "{err}"
    );
    let default = super::config::CONNECT_TIMEOUT;
    assert!(
        took >= default - Duration::from_millis(500) && took < default + Duration::from_secs(5),
        "took {took:?}"
    );
    // The URL's own value wins.
    let (err, took) = failure(&format!(
        "postgresql://plazo@127.0.0.1:{port}/none?connect_timeout=1"
    ));
    assert!(err.contains("no answer within 1s"), "{err}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "took {took:?}"
    );
}
