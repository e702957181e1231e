//! TLS to PostgreSQL, against a throwaway PostgreSQL 15 cluster of this test's own:
//! `ssl = on` with a certificate for `localhost` and `127.0.0.1` signed by a CA the test
//! makes with `openssl`, `pg_hba.conf` accepting `hostssl` only (plain connections are
//! rejected, as RDS' `rds.force_ssl` does) with SCRAM passwords. Checks every `sslmode`
//! and `sslrootcert` case on the dedicated connection, the pool, the LISTEN connection
//! and a whole server start. One cluster serves every check, so the binary holds a
//! single test; the cluster is stopped and its folder removed on drop, even on failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use planscape::config::{Config, DatabaseConfig};
use planscape::db::{self, DbError};

const PASSWORD: &str = "tls-test-pw";

/// A PostgreSQL cluster with TLS on, stopped and deleted on drop.
struct TlsCluster {
    dir: PathBuf,
    data: PathBuf,
    port: u16,
    /// The CA that signed the server's certificate.
    ca: PathBuf,
    /// A CA that signed nothing the server holds.
    other_ca: PathBuf,
}

fn pg_bin(name: &str) -> PathBuf {
    let bin = std::env::var("PGBIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    Path::new(&bin).join(name)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A PostgreSQL program, as the `postgres` user when running as root (PostgreSQL
/// refuses to run as root), from `/` (that user may not enter the current folder).
fn as_owner(program: &Path) -> Command {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.current_dir("/");
    cmd
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    run(Command::new("openssl").current_dir(dir).args(args));
}

/// Makes a CA (`{name}.crt`, `{name}.key`) in `dir`.
fn make_ca(dir: &Path, name: &str) -> PathBuf {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=Planscape test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
    dir.join(format!("{name}.crt"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl TlsCluster {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(common::unique("planscape_tls"));
        std::fs::create_dir_all(&dir).expect("cluster folder");
        let mut cluster = Self {
            data: dir.join("data"),
            port: free_port(),
            ca: PathBuf::new(),
            other_ca: PathBuf::new(),
            dir,
        };
        // From here on, a failure still removes the folder (and stops postgres).
        let dir = cluster.dir.clone();
        cluster.ca = make_ca(&dir, "ca");
        cluster.other_ca = make_ca(&dir, "other_ca");
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .expect("server.ext");
        openssl(
            &dir,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                "/CN=localhost",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        );
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.crt",
            ],
        );
        std::fs::write(dir.join("pwfile"), PASSWORD).expect("pwfile");
        if is_root() {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir));
        }
        run(Command::new("chmod").arg("600").arg(dir.join("server.key")));
        run(as_owner(&pg_bin("initdb"))
            .arg("-D")
            .arg(&cluster.data)
            .args(["-U", "planscape", "-E", "UTF8", "--locale=C.UTF-8"])
            .arg(format!("--pwfile={}", dir.join("pwfile").display()))
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"]));
        let conf = format!(
            "\n# planscape TLS test\nlisten_addresses = '127.0.0.1'\nport = {port}\n\
             unix_socket_directories = '{data}'\nmax_connections = 30\nshared_buffers = 16MB\n\
             ssl = on\nssl_cert_file = '{dir}/server.crt'\nssl_key_file = '{dir}/server.key'\n",
            port = cluster.port,
            data = cluster.data.display(),
            dir = dir.display(),
        );
        append(&cluster.data.join("postgresql.conf"), &conf);
        // Plain TCP is rejected outright; TLS with a password is the only way in.
        std::fs::write(
            cluster.data.join("pg_hba.conf"),
            "local all all trust\n\
             hostnossl all all 0.0.0.0/0 reject\n\
             hostssl all all 127.0.0.1/32 scram-sha-256\n",
        )
        .expect("pg_hba.conf");
        run(as_owner(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(&cluster.data)
            .arg("-l")
            .arg(dir.join("server.log"))
            .args(["-w", "-t", "60", "start"]));
        cluster
    }

    /// A URL for `host` with the given extra query (`sslmode=...&...`).
    fn url(&self, host: &str, db: &str, query: &str) -> String {
        format!(
            "postgres://planscape:{PASSWORD}@{host}:{}/{db}?{query}",
            self.port
        )
    }

    fn config(url: String) -> DatabaseConfig {
        DatabaseConfig {
            url,
            connect_timeout_ms: 5000,
            ..DatabaseConfig::default()
        }
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open postgresql.conf");
    f.write_all(text.as_bytes()).expect("append");
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        if self.data.join("PG_VERSION").exists() {
            let _ = as_owner(&pg_bin("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether this connection's session is encrypted (PostgreSQL's own view).
async fn session_is_tls(client: &tokio_postgres::Client) -> bool {
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl")
        .get(0)
}

async fn connect_err(url: String) -> DbError {
    match db::connect(&TlsCluster::config(url)).await {
        Ok(_) => panic!("connected, but should have been refused"),
        Err(e) => e,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_postgres() {
    let cluster = TlsCluster::start();
    let ca = cluster.ca.display().to_string();
    let other_ca = cluster.other_ca.display().to_string();

    // verify-full by the name in the certificate: connects, encrypted, SCRAM bound to
    // the TLS channel (channel_binding=require needs the certificate's hash from rustls).
    let full = cluster.url(
        "localhost",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={ca}&channel_binding=require"),
    );
    let client = db::connect(&TlsCluster::config(full.clone()))
        .await
        .expect("verify-full to localhost connects");
    assert!(session_is_tls(&client).await);
    // The certificate also names 127.0.0.1 (an IP address subjectAltName).
    let by_ip = cluster.url(
        "127.0.0.1",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let by_ip_client = db::connect(&TlsCluster::config(by_ip))
        .await
        .expect("verify-full to 127.0.0.1 connects");
    assert!(session_is_tls(&by_ip_client).await);

    // The pool connects the same way.
    let pool = db::create_pool(&TlsCluster::config(full.clone()))
        .await
        .expect("pool");
    let pooled = pool.get().await.expect("pooled TLS connection");
    assert!(session_is_tls(&pooled).await);
    drop(pooled);

    // A host name the certificate does not hold (reached at 127.0.0.1 through hostaddr;
    // the key=value form): verify-full refuses and says which name, verify-ca accepts.
    let misnamed = |mode: &str, root: &str| {
        format!(
            "host=planscape-db.invalid hostaddr=127.0.0.1 port={} user=planscape \
             password={PASSWORD} dbname=postgres sslmode={mode} sslrootcert='{root}'",
            cluster.port
        )
    };
    let err = connect_err(misnamed("verify-full", &ca)).await;
    let text = err.to_string();
    assert!(matches!(err, DbError::Tls(_)), "{err:?}");
    assert!(
        text.contains("does not name the host") && text.contains("planscape-db.invalid"),
        "{text}"
    );
    assert!(
        text.contains("sslmode=verify-ca"),
        "the fix is named: {text}"
    );
    let ca_only = db::connect(&TlsCluster::config(misnamed("verify-ca", &ca)))
        .await
        .expect("verify-ca does not compare the host name");
    assert!(session_is_tls(&ca_only).await);

    // A CA that did not sign the server's certificate: refused for verify-ca,
    // verify-full, and require with sslrootcert (libpq's meaning).
    for mode in ["verify-ca", "verify-full", "require"] {
        let err = connect_err(cluster.url(
            "localhost",
            "postgres",
            &format!("sslmode={mode}&sslrootcert={other_ca}"),
        ))
        .await;
        let text = err.to_string();
        assert!(matches!(err, DbError::Tls(_)), "{mode}: {err:?}");
        assert!(
            text.contains("not signed by a trusted CA") && text.contains("other_ca.crt"),
            "{mode}: {text}"
        );
    }
    // The pool is lazy: it builds, and its first connection is refused the same way
    // (what a tile request or /ready then reports).
    let untrusting = db::create_pool(&TlsCluster::config(cluster.url(
        "localhost",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={other_ca}"),
    )))
    .await
    .expect("a lazy pool builds");
    let err = DbError::from(
        untrusting
            .get()
            .await
            .expect_err("pooled connection refused"),
    );
    assert!(
        matches!(err, DbError::Tls(_)) && err.to_string().contains("not signed by a trusted CA"),
        "{err:?}"
    );
    // verify-ca without sslrootcert trusts the system's CAs, which did not sign it.
    let err = connect_err(cluster.url("localhost", "postgres", "sslmode=verify-ca")).await;
    assert!(
        err.to_string().contains("not signed by a trusted CA")
            && err
                .to_string()
                .contains("checked against the system's CA store"),
        "{err}"
    );

    // require without a root certificate: encrypted, certificate not checked; the
    // default (prefer) encrypts too when the server offers TLS.
    for query in ["sslmode=require", "application_name=default_mode"] {
        let client = db::connect(&TlsCluster::config(cluster.url(
            "planscape-db.invalid",
            "postgres",
            &format!("{query}&hostaddr=127.0.0.1"),
        )))
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"));
        assert!(session_is_tls(&client).await, "{query}");
    }

    // disable: the hostssl-only cluster refuses, and the error says what to set.
    let err = connect_err(cluster.url("localhost", "postgres", "sslmode=disable")).await;
    let text = err.to_string();
    assert!(matches!(err, DbError::EncryptionRequired(_)), "{err:?}");
    assert!(
        text.contains("refuses unencrypted connections") && text.contains("sslmode=verify-full"),
        "{text}"
    );
    assert!(!err.is_transient());

    // A missing sslrootcert file: named, with the fix; nothing is attempted.
    let missing = cluster.dir.join("no-such-ca.pem");
    let err = connect_err(cluster.url(
        "localhost",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={}", missing.display()),
    ))
    .await;
    let text = err.to_string();
    assert!(matches!(err, DbError::RootCert(_)), "{err:?}");
    assert!(
        text.contains("cannot read sslrootcert") && text.contains("no-such-ca.pem"),
        "{text}"
    );
    // A file without a certificate in it.
    let empty = cluster.dir.join("server.ext");
    let err = connect_err(cluster.url(
        "localhost",
        "postgres",
        &format!("sslmode=verify-ca&sslrootcert={}", empty.display()),
    ))
    .await;
    assert!(
        matches!(err, DbError::RootCert(_)) && err.to_string().contains("no usable CA"),
        "{err}"
    );

    // A whole server over verify-full: migrations, pool, LISTEN; /ready answers, and
    // every connection it holds, the LISTEN one included, is encrypted.
    client
        .batch_execute("CREATE DATABASE planscape")
        .await
        .expect("create database");
    let app_url = cluster.url(
        "localhost",
        "planscape",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let server = common::TestServer::start_on("", &app_url, &[]).await;
    let ready = server.get("/ready", &[]).await;
    assert_eq!(ready.status(), 200, "{:?}", ready.text().await);
    let deadline = Instant::now() + Duration::from_secs(30);
    let listen = loop {
        let row = client
            .query_opt(
                "SELECT s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
                 WHERE a.datname = 'planscape' AND a.query LIKE 'LISTEN planscape%'",
                &[],
            )
            .await
            .expect("pg_stat_activity");
        if row.is_some() || Instant::now() > deadline {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let listen_ssl: bool = listen.expect("the LISTEN connection is open").get(0);
    assert!(listen_ssl, "the LISTEN connection is encrypted");
    let plain: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.datname = 'planscape' AND NOT s.ssl",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(plain, 0);
    server.stop().await;

    // A server whose certificate check fails stops at start-up with the reason, without
    // the retries an unreachable database gets.
    let wrong_ca = cluster.url(
        "localhost",
        "planscape",
        &format!("sslmode=verify-full&sslrootcert={other_ca}"),
    );
    let config = Config::parse("", "tls test", |k| match k {
        "DATABASE_URL" => Some(wrong_ca.clone()),
        "PLANSCAPE_LISTEN" => Some("127.0.0.1:0".to_owned()),
        _ => None,
    })
    .expect("valid config");
    let err = match planscape::server::start(config).await {
        Ok(_) => panic!("started with an untrusted certificate"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("not signed by a trusted CA"), "{err}");

    // An invalid sslmode is a configuration error, before anything connects.
    let err = Config::parse("", "tls test", |k| {
        (k == "DATABASE_URL").then(|| cluster.url("localhost", "planscape", "sslmode=verify"))
    })
    .expect_err("sslmode=verify is refused");
    let text = err.to_string();
    assert!(
        text.contains("database.url") && text.contains("sslmode `verify`"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");

    // The shared cluster (ssl off unless configured): sslmode=require is refused with
    // the reason.
    shared_cluster_without_tls().await;
}

/// `sslmode=require` against a server without TLS (the shared test cluster, when its
/// `ssl` is off) fails with a message that says so.
async fn shared_cluster_without_tls() {
    let shared = common::database_url();
    let client = db::connect(&common::db_config())
        .await
        .expect("shared test database reachable");
    let ssl: String = client
        .query_one("SHOW ssl", &[])
        .await
        .expect("SHOW ssl")
        .get(0);
    if ssl == "on" {
        eprintln!("the shared test database has TLS on: the no-TLS check does not apply");
        return;
    }
    let separator = if shared.contains('?') { '&' } else { '?' };
    let err = connect_err(format!("{shared}{separator}sslmode=require")).await;
    let text = err.to_string();
    assert!(matches!(err, DbError::Tls(_)), "{err:?}");
    assert!(text.contains("does not accept TLS"), "{text}");
}
