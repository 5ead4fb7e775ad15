//! A private `redis-server` for one test: started on a free loopback port
//! with persistence off, killed on drop. A missing `redis-server` binary
//! fails the test with a message saying so: these tests never skip.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    l.local_addr().expect("local address").port()
}

fn pings(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

impl RedisServer {
    /// Starts a server on a free port.
    pub fn start() -> RedisServer {
        for _ in 0..5 {
            if let Some(s) = RedisServer::try_start(free_port()) {
                return s;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// Starts a server on `port` (for a restart on the same address).
    pub fn start_on(port: u16) -> RedisServer {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = RedisServer::try_start(port) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn try_start(port: u16) -> Option<RedisServer> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--dir", &std::env::temp_dir().display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed (not on PATH): these tests need a real Redis; \
                 install it (apt-get install redis-server)"
            ),
            Err(e) => panic!("cannot run redis-server: {e}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if pings(port) {
                return Some(RedisServer {
                    child: Some(child),
                    port,
                });
            }
            if let Ok(Some(_)) = child.try_wait() {
                // Exited: most likely the port was taken meanwhile.
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to clients) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
