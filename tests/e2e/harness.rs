//! Shared by every end-to-end test: building the guests once, temporary projects, and the
//! real `tern` binary as a child process that is always stopped.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, OnceLock},
    thread,
    time::{Duration, Instant},
};

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent")
}

/// Builds the example functions and the test fixtures (once per test run) and returns the
/// directory holding the `.wasm` components.
pub fn guests() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        for dir in ["functions", "tests/fixtures"] {
            let status = Command::new(&cargo)
                .args(["build", "--release", "--quiet"])
                .current_dir(repo().join(dir))
                .env_remove("CARGO_TARGET_DIR")
                .status()
                .expect("run cargo to build the guests");
            assert!(status.success(), "building the guests in {dir} failed");
        }
        repo().join("target/wasm32-wasip2/release")
    })
}

/// The component cache every test host shares (tests that check the cache pass their own
/// `--cache-dir`), inside `target/` so that test runs leave nothing elsewhere.
pub fn cache_dir() -> PathBuf {
    repo().join("target/tern-e2e-cache")
}

/// The path of a built component, e.g. `wasm("hello")`.
pub fn wasm(name: &str) -> PathBuf {
    let path = guests().join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// A project directory written by a test, removed when dropped.
pub struct TestProject {
    dir: tempfile::TempDir,
}

impl TestProject {
    /// An empty project.
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("create a temp dir") }
    }

    /// Its directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `functions/<name>.yaml`; `{wasm:X}` in `yaml` becomes the path of component X.
    pub fn function(self, name: &str, yaml: &str) -> Self {
        self.write(&format!("functions/{name}.yaml"), yaml)
    }

    /// Writes `messaging/<name>.yaml`.
    pub fn messaging(self, name: &str, yaml: &str) -> Self {
        self.write(&format!("messaging/{name}.yaml"), yaml)
    }

    /// Copies every file of the example project `examples/<name>` into this project.
    pub fn from_example(name: &str) -> Self {
        let project = Self::new();
        let source = repo().join("examples").join(name);
        for sub in ["functions", "messaging"] {
            let Ok(entries) = std::fs::read_dir(source.join(sub)) else { continue };
            for entry in entries.map(|e| e.expect("dir entry")) {
                let text = std::fs::read_to_string(entry.path()).expect("read example file");
                // Sources are relative to the example: make them absolute for the copy.
                let text =
                    text.replace("../../../target/", &format!("{}/target/", repo().display()));
                let rel = format!("{sub}/{}", entry.file_name().to_string_lossy());
                let path = project.dir.path().join(rel);
                std::fs::create_dir_all(path.parent().expect("parent")).expect("create dirs");
                std::fs::write(path, text).expect("write project file");
            }
        }
        project
    }

    /// Writes `tern.yaml`.
    pub fn settings(self, yaml: &str) -> Self {
        self.write("tern.yaml", yaml)
    }

    /// An HTTP function on `GET path` (or another method) served by component `component`.
    pub fn http(
        self,
        name: &str,
        method: &str,
        path: &str,
        component: &str,
        execution: &str,
    ) -> Self {
        let yaml = format!(
            "trigger: {{ type: https, method: {method}, paths: [{path}] }}\n\
             execution: {{ {execution} }}\nsource: {{wasm:{component}}}\n"
        );
        self.function(name, &yaml)
    }

    fn write(self, rel: &str, text: &str) -> Self {
        let mut text = text.to_string();
        while let Some(start) = text.find("{wasm:") {
            let end = start + text[start..].find('}').expect("closing brace");
            let path = wasm(&text[start + 6..end]);
            text.replace_range(start..=end, &path.display().to_string());
        }
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create dirs");
        std::fs::write(path, text).expect("write project file");
        self
    }
}

/// A running `tern serve`, killed when dropped if it is still running.
pub struct Tern {
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
    logs: Arc<Mutex<String>>,
}

impl Tern {
    /// Serves `dir` on an ephemeral port of 127.0.0.1.
    pub fn serve(dir: &Path) -> Tern {
        Self::serve_with(dir, &[])
    }

    /// Serves `dir` with extra command-line arguments.
    pub fn serve_with(dir: &Path, extra: &[&str]) -> Tern {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tern"));
        kill_with_parent(&mut command);
        let mut child = command
            .arg("serve")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env("TERN_LOG", "info")
            .env("TERN_CACHE_DIR", cache_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tern");
        let logs = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = logs.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut logs = sink.lock().expect("logs lock");
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read tern's stdout");
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                let _ = child.wait();
                thread::sleep(Duration::from_millis(100));
                panic!("tern did not start: stdout {line:?}, logs:\n{}", logs.lock().expect("lock"))
            });
        // Anything more on stdout would break the one-line promise: keep reading to check.
        let extra_stdout = Arc::new(Mutex::new(String::new()));
        let extra = extra_stdout.clone();
        thread::spawn(move || {
            let mut rest = String::new();
            let _ = stdout.read_to_string(&mut rest);
            extra.lock().expect("lock").push_str(&rest);
        });
        Tern { child, addr, logs }
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything it logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().expect("logs lock").clone()
    }

    /// Waits until its logs contain `needle`, for at most 10 s.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let logs = self.logs();
            if logs.contains(needle) {
                return logs;
            }
            assert!(Instant::now() < deadline, "no log line with {needle:?} in:\n{logs}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal (`TERM`, `INT`) to the process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit, for at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll tern") {
                return status;
            }
            assert!(Instant::now() < deadline, "tern did not exit within {limit:?}");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Tern {
    /// Its resident memory in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS in /proc status")
    }
}

impl Drop for Tern {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes the child die with the test thread that started it, so a test killed from outside
/// (a timeout, Ctrl-C) leaves no `tern` behind; `Drop` covers every other ending.
fn kill_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Runs the `tern` binary to completion with `args` in `cwd`: (exit code, stdout, stderr).
pub fn tern_cli(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(args)
        .env("TERN_CACHE_DIR", cache_dir())
        .current_dir(cwd)
        .output()
        .expect("run tern");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Sends raw bytes on a fresh connection and returns everything the server answers until
/// it closes the connection or stays silent for 3 s.
pub fn raw_http(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(3))).expect("set timeout");
    stream.write_all(request).expect("send");
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An HTTP client with a bounded timeout, so a hung server fails the test instead of it.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("build client")
}

/// A WebSocket client connection.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects a WebSocket client to `url`, panicking with the HTTP answer if refused.
pub async fn ws_connect(url: &str) -> Ws {
    match tokio_tungstenite::connect_async(url).await {
        Ok((ws, _)) => ws,
        Err(e) => panic!("cannot connect to {url}: {e}"),
    }
}

/// The HTTP status a refused WebSocket handshake got.
pub async fn ws_refusal(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => panic!("{url} accepted the WebSocket"),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{url}: unexpected error {e}"),
    }
}

/// The next data or close frame (pings and pongs skipped), within 10 s.
pub async fn ws_next(ws: &mut Ws) -> tokio_tungstenite::tungstenite::Message {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("no frame within 10 s")
            .expect("connection ended without a close frame")
            .expect("WebSocket error");
        if !matches!(next, Message::Ping(_) | Message::Pong(_)) {
            return next;
        }
    }
}

/// The next frame, which must be a text frame; returns its text.
pub async fn ws_next_text(ws: &mut Ws) -> String {
    match ws_next(ws).await {
        tokio_tungstenite::tungstenite::Message::Text(t) => t.to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The close code of the next frame, which must be a close frame.
pub async fn ws_close_code(ws: &mut Ws) -> u16 {
    match ws_next(ws).await {
        tokio_tungstenite::tungstenite::Message::Close(Some(frame)) => frame.code.into(),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// Asks `GET /api/ws?room=ROOM` of the chat example for the room's WebSocket URL.
pub async fn room_url(tern: &Tern, room: &str) -> String {
    let resp = client().get(tern.url(&format!("/api/ws?room={room}"))).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}
