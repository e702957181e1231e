//! Running the `planscape` binary.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{database_url, unique};

/// `planscape ARGS...`, run from the repository root against the test database
/// (`DATABASE_URL`), logging warnings only, and without the batch engines' shard index
/// variables of the caller's environment. The returned command takes more arguments,
/// environment and a working directory of its own before it runs.
pub fn planscape(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_planscape"));
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DATABASE_URL", database_url())
        .env("RUST_LOG", "warn")
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("AWS_BATCH_JOB_ARRAY_INDEX");
    cmd
}

/// `planscape --config CONFIG ARGS...`, as [`planscape`].
pub fn planscape_config(config: &Path, args: &[&str]) -> Command {
    let mut cmd = planscape(&["--config"]);
    cmd.arg(config).args(args);
    cmd
}

/// Runs `planscape --config CONFIG ARGS...` to its end.
pub fn run(config: &Path, args: &[&str]) -> Output {
    planscape_config(config, args)
        .output()
        .expect("run planscape")
}

/// Runs `planscape --config FILE ARGS...` to its end, with `text` as the configuration
/// file (removed afterwards) and `env` added to the environment.
pub fn run_config_text(text: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let config = ConfigFile::new(text);
    planscape_config(&config, args)
        .envs(env.iter().copied())
        .output()
        .expect("run planscape")
}

/// What the binary wrote on standard error.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that the binary succeeded, showing its standard error when not.
#[track_caller]
pub fn assert_success(out: &Output) {
    assert!(out.status.success(), "{}", stderr(out));
}

/// A configuration file in a fresh directory of its own, removed with the directory on
/// drop. Dereferences to the file's path.
pub struct ConfigFile {
    dir: PathBuf,
    path: PathBuf,
}

impl ConfigFile {
    /// Writes `text` to `planscape.toml` in a new temporary directory.
    pub fn new(text: &str) -> Self {
        let dir = std::env::temp_dir().join(unique("config"));
        std::fs::create_dir_all(&dir).expect("config dir");
        let path = dir.join("planscape.toml");
        std::fs::write(&path, text).expect("write config");
        Self { dir, path }
    }
}

impl Deref for ConfigFile {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `planscape serve` as a process of its own on a free loopback port, with `config` as
/// its configuration file and `env` added to its environment; its log goes to
/// `serve.log` beside the file. Killed on drop.
pub struct ServeProcess {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    child: std::process::Child,
    log: PathBuf,
    _config: ConfigFile,
}

impl ServeProcess {
    /// Starts the server and waits until it is ready (`/ready` answers 200).
    pub async fn start(config: &str, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let config = ConfigFile::new(config);
        let log = config.dir.join("serve.log");
        let child = planscape_config(&config, &["serve"])
            .env("PLANSCAPE_LISTEN", format!("127.0.0.1:{port}"))
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("planscape serve starts");
        let server = Self {
            base: format!("http://127.0.0.1:{port}"),
            child,
            log,
            _config: config,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Ok(r) = super::client()
                .get(format!("{}/ready", server.base))
                .send()
                .await
                && r.status().is_success()
            {
                return server;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not come up: {}",
                server.log_text()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// GET `path` with optional headers.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        super::get_at(&self.base, path, headers).await
    }

    /// The server's `/metrics` text.
    pub async fn metrics(&self) -> String {
        super::metrics_at(&self.base).await
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
