//! A throwaway PostgreSQL server for tests (the backend's unit tests and the integration
//! tests in `tests/`), started once per test binary. Not part of plazo's API.
//!
//! The server: `initdb` into a temporary directory, `postgres` on a free loopback port with
//! its unix socket in that directory, trust authentication, superuser `plazo`. As root (CI
//! containers) it runs as the unprivileged user `pgtest` (created with `useradd` when
//! missing), since PostgreSQL refuses to run as root. A watchdog shell holds a pipe from this
//! process and stops the server (`pg_ctl stop -m fast`) once the pipe closes, when the test
//! binary exits, and removes the directory. Each [`new_database`] is a database of its own.
//!
//! [`new_tls_database`] starts a second server, with `ssl=on` and a certificate for
//! `localhost` and `127.0.0.1` signed by a CA made for it at start (with the `openssl` command);
//! its databases come with that CA's file, and another CA's, to test verification.
//!
//! Binaries are looked up in `$PLAZO_PG_BIN`, then `/usr/lib/postgresql/*/bin` (Debian), then
//! `PATH`. Without them [`new_database`] answers `Ok(None)` and says why: callers skip. The
//! server runs with `fsync=off` unless `PLAZO_PG_FSYNC=on` (benchmarks).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use thiserror::Error;

/// The running test server.
struct Server {
    port: u16,
    /// The CA files, for a server with TLS.
    tls: Option<TlsFiles>,
    /// The watchdog: the server stops when its stdin closes (this process exits).
    _watchdog: std::process::Child,
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`, if any.
fn bin_dir() -> Option<PathBuf> {
    let has = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(d) = std::env::var_os("PLAZO_PG_BIN").map(PathBuf::from) {
        return has(&d).then_some(d);
    }
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| has(d))
        .collect();
    debian.sort();
    if let Some(d) = debian.pop() {
        return Some(d);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|d| has(d))
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `cmd` run as the PostgreSQL user (`pgtest` when this process is root).
fn as_pg_user(bin: &Path, args: &[&str]) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "pgtest", "--"]).arg(bin).args(args);
        c
    } else {
        let mut c = Command::new(bin);
        c.args(args);
        c
    }
}

/// The CA files of the TLS server (under its directory).
#[derive(Clone)]
struct TlsFiles {
    ca: PathBuf,
    other_ca: PathBuf,
}

/// The server's settings for TLS: a CA, a server certificate it signed for `localhost` and
/// `127.0.0.1`, and a second, unrelated CA. Made in `dir/tls` (before `dir` is handed to the
/// server's user, who must own the key).
fn make_certificates(dir: &Path) -> Result<(TlsFiles, String), String> {
    let tls = dir.join("tls");
    std::fs::create_dir(&tls).map_err(|e| e.to_string())?;
    let openssl = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&tls)
            .output()
            .map_err(|e| format!("cannot run openssl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "openssl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for (name, cn) in [("ca", "plazo test CA"), ("other-ca", "plazo other CA")] {
        let (key, pem, subj) = (
            format!("{name}.key"),
            format!("{name}.pem"),
            format!("/CN={cn}"),
        );
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        args.extend([
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            &subj,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&args)?;
    }
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(&args)?;
    std::fs::write(
        tls.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| e.to_string())?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ])?;
    // PostgreSQL refuses a key others can read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            tls.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .map_err(|e| e.to_string())?;
    }
    let opts = format!(
        " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
        tls.join("server.crt").display(),
        tls.join("server.key").display()
    );
    Ok((
        TlsFiles {
            ca: tls.join("ca.pem"),
            other_ca: tls.join("other-ca.pem"),
        },
        opts,
    ))
}

/// Starts a server; with TLS when `tls`.
fn start(tls: bool) -> Result<Server, String> {
    let bin = bin_dir().ok_or("no PostgreSQL binaries (initdb, pg_ctl) found")?;
    let dir = server_dir()?;
    let started = start_in(&bin, &dir, tls);
    if started.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    started
}

/// Starts the server in `dir` (removed by the caller on failure, by the watchdog later).
fn start_in(bin: &Path, dir: &Path, tls: bool) -> Result<Server, String> {
    let data = dir.join("data");
    let sock = dir;
    let (files, tls_opts) = if tls {
        let (files, opts) = make_certificates(dir)?;
        (Some(files), opts)
    } else {
        (None, String::new())
    };
    if is_root() {
        let exists = Command::new("id")
            .arg("pgtest")
            .output()
            .map_err(|e| e.to_string())?;
        if !exists.status.success() {
            let made = Command::new("useradd")
                .args(["-r", "-M", "-s", "/usr/sbin/nologin", "pgtest"])
                .status()
                .map_err(|e| e.to_string())?;
            if !made.success() {
                return Err("cannot create user pgtest".into());
            }
        }
        let owned = Command::new("chown")
            .args(["-R", "pgtest"])
            .arg(dir)
            .status()
            .map_err(|e| e.to_string())?;
        if !owned.success() {
            return Err("cannot chown the server directory to pgtest".into());
        }
    }
    let out = as_pg_user(
        &bin.join("initdb"),
        &[
            "-D",
            &data.to_string_lossy(),
            "-U",
            "plazo",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ],
    )
    .output()
    .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let pg_ctl = bin.join("pg_ctl");
    // Tests need ordering and visibility, not durability: fsync off unless a benchmark asks.
    let fsync = if std::env::var("PLAZO_PG_FSYNC").is_ok_and(|v| v == "on") {
        "on"
    } else {
        "off"
    };
    let opts = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync={fsync} -c max_connections=500{tls_opts}",
        sock.display()
    );
    let log = dir.join("server.log");
    let out = as_pg_user(
        &pg_ctl,
        &[
            "-D",
            &data.to_string_lossy(),
            "-l",
            &log.to_string_lossy(),
            "-o",
            &opts,
            "-w",
            "start",
        ],
    )
    .output()
    .map_err(|e| e.to_string())?;
    if !out.status.success() {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        return Err(format!(
            "pg_ctl start failed: {}{log}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // Stops the server and removes its directory once this process's end of the pipe closes.
    let runas = if is_root() {
        "runuser -u pgtest -- "
    } else {
        ""
    };
    let script = format!(
        "read _; {runas}'{}' -D '{}' -m fast stop >/dev/null 2>&1; rm -rf '{}'",
        pg_ctl.display(),
        data.display(),
        dir.display()
    );
    let watchdog = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    Ok(Server {
        port,
        tls: files,
        _watchdog: watchdog,
    })
}

/// The server of this test binary, if PostgreSQL is available.
fn server() -> Option<&'static Server> {
    static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
    match SERVER.get_or_init(|| start(false)) {
        Ok(s) => Some(s),
        Err(why) => {
            eprintln!("skipping PostgreSQL test: {why}");
            None
        }
    }
}

/// The TLS server of this test binary (a second one), if PostgreSQL and `openssl` are there.
fn tls_server() -> Option<&'static Server> {
    static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
    match SERVER.get_or_init(|| start(true)) {
        Ok(s) => Some(s),
        Err(why) => {
            eprintln!("skipping PostgreSQL test: {why}");
            None
        }
    }
}

/// A new directory for the server under the system's temporary directory (the watchdog
/// removes it).
fn server_dir() -> Result<PathBuf, String> {
    for n in 0..100 {
        let dir = std::env::temp_dir().join(format!("plazo-pgtest-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
        }
    }
    Err("cannot create a directory for the test server".into())
}

/// The test server is up but a database could not be created on it.
#[derive(Debug, Error)]
pub enum TestDatabaseError {
    /// The server refused the connection or the `CREATE DATABASE`.
    #[error("creating a test database: {}", super::pg_text(.0))]
    Create(#[from] postgres::Error),
    /// The thread running the synchronous client panicked.
    #[error("creating a test database: the client thread panicked")]
    Panicked,
}

/// A new, empty database on this process's test server (started on first use): its URL,
/// `postgresql://plazo@127.0.0.1:PORT/NAME`. `Ok(None)` when PostgreSQL is not available
/// (the reason is printed; the caller skips its test).
pub fn new_database() -> Result<Option<String>, TestDatabaseError> {
    let Some(server) = server() else {
        return Ok(None);
    };
    let name = create_database(server.port)?;
    Ok(Some(format!(
        "postgresql://plazo@127.0.0.1:{}/{name}",
        server.port
    )))
}

/// A database on the TLS test server: [`new_tls_database`].
#[derive(Clone, Debug)]
pub struct TlsDatabase {
    /// `postgresql://plazo@localhost:PORT/NAME`, without parameters: add `?sslmode=...`.
    pub url: String,
    /// The server's port (on 127.0.0.1).
    pub port: u16,
    /// The database's name.
    pub name: String,
    /// The CA that signed the server's certificate (PEM), for `sslrootcert`.
    pub ca: PathBuf,
    /// A CA that did not sign it.
    pub other_ca: PathBuf,
}

/// A new, empty database on this process's TLS test server (a second server, with `ssl=on`,
/// started on first use). `Ok(None)` when PostgreSQL or `openssl` is not available (the
/// reason is printed; the caller skips its test).
pub fn new_tls_database() -> Result<Option<TlsDatabase>, TestDatabaseError> {
    let Some(server) = tls_server() else {
        return Ok(None);
    };
    let Some(files) = server.tls.clone() else {
        return Ok(None);
    };
    let name = create_database(server.port)?;
    Ok(Some(TlsDatabase {
        url: format!("postgresql://plazo@localhost:{}/{name}", server.port),
        port: server.port,
        name,
        ca: files.ca,
        other_ca: files.other_ca,
    }))
}

/// Creates a database of a new name on the server at `port`; its name.
fn create_database(port: u16) -> Result<String, TestDatabaseError> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    // The synchronous client must not run inside a tokio runtime: use a thread of its own.
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(
            &format!("host=127.0.0.1 port={port} user=plazo dbname=postgres"),
            postgres::NoTls,
        )?;
        c.batch_execute(&format!("CREATE DATABASE {name}"))?;
        Ok(name)
    })
    .join()
    .unwrap_or(Err(TestDatabaseError::Panicked))
}
