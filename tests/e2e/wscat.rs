//! The seed demo as a user runs it: two `wscat` processes (the npm CLI) in one room.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use crate::harness::{Tern, client, kill_with_parent, repo, room_url};

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wscat(url: &str) -> Process {
    let bin = repo().join("tools/node_modules/.bin/wscat");
    assert!(bin.is_file(), "wscat is not installed: run scripts/setup.sh");
    let mut command = Command::new(bin);
    kill_with_parent(&mut command);
    let child = command
        .args(["-c", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start wscat");
    Process(child)
}

#[tokio::test]
async fn a_line_typed_in_one_wscat_comes_out_of_the_other() {
    let tern = Tern::serve(&repo().join("examples/chat"));
    let url = room_url(&tern, "wscat").await;
    let mut alice = wscat(&url);
    let mut bob = wscat(&url);
    let (lines_tx, lines) = mpsc::channel();
    let stdout = bob.0.stdout.take().expect("piped");
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // wscat prints nothing when it connects without a terminal: wait until the room has
    // both clients, asking the host through the notify function.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let resp = client().post(tern.url("/api/notify?room=wscat")).body("probe").send().await;
        let body: serde_json::Value = resp.unwrap().json().await.unwrap();
        if body["listeners"] == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the wscat clients did not connect");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stdin = alice.0.stdin.as_mut().expect("piped");
    writeln!(stdin, "hello from alice").unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).expect("bob never printed alice's line");
        if line.contains("hello from alice") {
            break;
        }
        assert!(line.contains("probe"), "unexpected output from bob's wscat: {line:?}");
    }
}
