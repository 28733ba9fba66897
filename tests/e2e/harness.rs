//! Shared by every end-to-end test: building the guests once, temporary projects, and the
//! real `tern` binary as a child process that is always stopped.

use std::{
    io::{BufRead, BufReader, ErrorKind, Read, Write},
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

/// How to start `tern serve`: what tests vary besides the project.
pub struct Serve {
    command: Command,
    listen: bool,
    close_stderr: bool,
    admin: bool,
}

impl Serve {
    /// `tern serve DIR --listen 127.0.0.1:0`, logging at `info` into the test's buffer,
    /// with the test cache directory.
    pub fn new(dir: &Path) -> Self {
        Self::command("serve", dir)
    }

    /// `tern SUBCOMMAND DIR` (`serve` or `dev`), as [`Serve::new`] otherwise.
    pub fn command(subcommand: &str, dir: &Path) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tern"));
        kill_with_parent(&mut command);
        command
            .arg(subcommand)
            .arg(dir)
            .env("TERN_LOG", "info")
            .env("TERN_CACHE_DIR", cache_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Self { command, listen: true, close_stderr: false, admin: false }
    }

    /// With an admin listener on an ephemeral port (`--admin-listen 127.0.0.1:0`).
    pub fn admin(mut self) -> Self {
        self.command.args(["--admin-listen", "127.0.0.1:0"]);
        self.admin = true;
        self
    }

    /// Extra command-line arguments.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.command.args(args);
        self
    }

    /// An environment variable (`TERN_LOG` replaces the default `info`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.command.env(key, value);
        self
    }

    /// Without `--listen`: the address comes from `tern.yaml` (or its default).
    pub fn listen_from_settings(mut self) -> Self {
        self.listen = false;
        self
    }

    /// Closes the read end of tern's stderr at once, as when whoever read the logs is gone.
    pub fn stderr_closed(mut self) -> Self {
        self.close_stderr = true;
        self
    }

    /// Starts tern and waits for its `listening on` line.
    pub fn start(mut self) -> Tern {
        if self.listen {
            self.command.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = self.command.spawn().expect("start tern");
        let logs = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        if self.close_stderr {
            drop(stderr);
        } else {
            let sink = logs.clone();
            thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut logs = sink.lock().expect("logs lock");
                    logs.push_str(&line);
                    logs.push('\n');
                }
            });
        }
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
        let admin = self.admin.then(|| {
            let mut line = String::new();
            stdout.read_line(&mut line).expect("read tern's stdout");
            let addr = line.trim().strip_prefix("admin on http://").and_then(|a| a.parse().ok());
            addr.unwrap_or_else(|| panic!("no admin line on stdout: {line:?}"))
        });
        // Anything more on stdout would break the one-line promise: keep reading, so that
        // `stdout_after_listening_line` can tell once tern has exited.
        let rest_of_stdout = thread::spawn(move || {
            let mut rest = Vec::new();
            let _ = stdout.read_to_end(&mut rest);
            String::from_utf8_lossy(&rest).into_owned()
        });
        Tern { child, addr, admin, logs, rest_of_stdout: Some(rest_of_stdout) }
    }
}

/// A running `tern serve`, killed when dropped if it is still running.
pub struct Tern {
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The admin listener's address, when started with [`Serve::admin`].
    pub admin: Option<SocketAddr>,
    logs: Arc<Mutex<String>>,
    /// What it writes to stdout after its `listening on` line, complete once it exits.
    rest_of_stdout: Option<thread::JoinHandle<String>>,
}

impl Tern {
    /// Serves `dir` on an ephemeral port of 127.0.0.1.
    pub fn serve(dir: &Path) -> Tern {
        Serve::new(dir).start()
    }

    /// Serves `dir` with extra command-line arguments.
    pub fn serve_with(dir: &Path, extra: &[&str]) -> Tern {
        Serve::new(dir).args(extra).start()
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `http://ADMIN_ADDR{path}`; panics without an admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin.expect("started with Serve::admin"))
    }

    /// Everything it logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().expect("logs lock").clone()
    }

    /// The lines it logged so far that contain every one of `needles`.
    pub fn log_lines(&self, needles: &[&str]) -> Vec<String> {
        let logs = self.logs();
        logs.lines().filter(|l| needles.iter().all(|n| l.contains(n))).map(String::from).collect()
    }

    /// Waits until its logs contain `needle`, for at most 20 s.
    pub fn wait_for_log(&self, needle: &str) -> String {
        self.wait_for_lines(&[needle], 1);
        self.logs()
    }

    /// Waits until it has logged at least `count` lines containing every one of `needles`,
    /// for at most 20 s, and returns those lines.
    pub fn wait_for_lines(&self, needles: &[&str], count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let lines = self.log_lines(needles);
            if lines.len() >= count {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} log lines with {needles:?} in:\n{}",
                lines.len(),
                self.logs()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
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

    /// Whether the process has exited.
    pub fn has_exited(&mut self) -> bool {
        self.child.try_wait().expect("poll tern").is_some()
    }

    /// Everything it wrote to stdout after its `listening on` line; only once it exited.
    pub fn stdout_after_listening_line(&mut self) -> String {
        let exited = self.child.try_wait().expect("poll tern");
        assert!(exited.is_some(), "stdout is complete only once tern has exited");
        let reader = self.rest_of_stdout.take().expect("stdout is read once");
        reader.join().expect("the stdout reader does not panic")
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
pub fn kill_with_parent(command: &mut Command) {
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

/// Runs `tern ARGS` in `cwd` with the test cache: exit code, stdout, stderr.
pub fn tern_cli(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    tern_cli_with(cwd, args, &[])
}

/// [`tern_cli`] with `env` set, and nothing of the test's own `CARGO_TARGET_DIR` or
/// `TERN_ADMIN_KEY` passed on.
pub fn tern_cli_with(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tern"));
    kill_with_parent(&mut command);
    command.args(args).current_dir(cwd).env("TERN_CACHE_DIR", cache_dir());
    command.env_remove("CARGO_TARGET_DIR").env_remove("TERN_ADMIN_KEY");
    command.envs(env.iter().copied());
    let out = command.output().expect("run tern");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// What a server answered on a raw connection, and how the exchange ended.
#[derive(Debug)]
pub struct RawAnswer {
    /// Everything it sent, lossily decoded.
    pub text: String,
    /// True when the server closed the connection (end of stream or reset); false when it
    /// kept it open and stayed silent for [`RAW_SILENCE`].
    pub closed: bool,
}

impl std::ops::Deref for RawAnswer {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for RawAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let end = if self.closed { "closed" } else { "still open" };
        write!(f, "{} [connection {end}]", self.text)
    }
}

/// How long [`raw_http`] waits for more bytes before it takes the connection as kept open.
pub const RAW_SILENCE: Duration = Duration::from_secs(5);

/// Sends raw bytes on a fresh connection and returns everything the server answers until
/// it closes the connection or stays silent for [`RAW_SILENCE`].
pub fn raw_http(addr: SocketAddr, request: &[u8]) -> RawAnswer {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(RAW_SILENCE)).expect("set timeout");
    // A server may answer and close before reading all of a hostile request; what it
    // answered is still there to read.
    let _ = stream.write_all(request);
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break false;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break true, // reset, aborted: closed all the same
        }
    };
    RawAnswer { text: String::from_utf8_lossy(&out).into_owned(), closed }
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
