//! Real proxies on loopback for the client proxy tests, shared by the suite (`tests/it`) and
//! the CLI's tests (included with `#[path]`): tinyproxy (HTTP CONNECT, Basic auth), dante's
//! `danted` (SOCKS5 without auth) and microsocks (SOCKS5 with RFC 1929 auth). Each instance
//! gets its own config in its own temp dir and a free 127.0.0.1 port, and is killed on drop.
//! `scripts/install-proxies.sh` installs them; a missing one fails the test, naming the fix.

#![allow(dead_code)]

#[path = "port.rs"]
mod port;

use std::net::{Ipv4Addr, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a proxy may take to start listening.
const START_LIMIT: Duration = Duration::from_secs(10);

/// The user and password the authenticating proxies accept.
pub(crate) const USER: &str = "alice";
pub(crate) const PASSWORD: &str = "s3cret";

/// A proxy process on 127.0.0.1.
pub(crate) struct RunningProxy {
    pub(crate) port: u16,
    child: Child,
    dir: PathBuf,
}

impl RunningProxy {
    /// `scheme://[user:password@]127.0.0.1:port`.
    pub(crate) fn url(&self, scheme: &str, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((user, password)) => {
                format!("{scheme}://{user}:{password}@127.0.0.1:{}", self.port)
            }
            None => format!("{scheme}://127.0.0.1:{}", self.port),
        }
    }

    /// The proxy's log (tinyproxy writes one line per tunnel request).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("proxy.log")).unwrap_or_default()
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// tinyproxy, asking for Basic credentials `USER:PASSWORD` when `auth`.
pub(crate) fn tinyproxy(auth: bool) -> RunningProxy {
    let binary = find("TETHER_TINYPROXY", "tinyproxy");
    start(|dir, port| {
        let mut config = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 20\nAllow 127.0.0.1\n\
             LogFile \"{}\"\nLogLevel Connect\nPidFile \"{}\"\n",
            dir.join("proxy.log").display(),
            dir.join("proxy.pid").display(),
        );
        if auth {
            config.push_str(&format!("BasicAuth {USER} {PASSWORD}\n"));
        }
        let path = dir.join("tinyproxy.conf");
        std::fs::write(&path, config).expect("tinyproxy config");
        let mut command = Command::new(&binary);
        command.arg("-d").arg("-c").arg(path);
        command
    })
}

/// dante's danted, SOCKS5 without authentication.
pub(crate) fn dante() -> RunningProxy {
    let binary = find("TETHER_DANTED", "danted");
    start(|dir, port| {
        let mut config = format!(
            "logoutput: {}\ninternal: 127.0.0.1 port = {port}\nexternal: 127.0.0.1\n\
             clientmethod: none\nsocksmethod: none\n",
            dir.join("proxy.log").display(),
        );
        // As root, danted wants to know whom to run as; unprivileged, it runs as itself.
        // These settings come before the rules.
        if is_root() {
            config.push_str("user.privileged: root\nuser.unprivileged: nobody\n");
        }
        config.push_str(
            "client pass { from: 127.0.0.1/32 to: 0.0.0.0/0 }\n\
             socks pass { from: 127.0.0.1/32 to: 127.0.0.0/8 log: connect }\n",
        );
        let path = dir.join("sockd.conf");
        std::fs::write(&path, config).expect("danted config");
        let mut command = Command::new(&binary);
        command
            .arg("-f")
            .arg(path)
            .arg("-p")
            .arg(dir.join("proxy.pid"))
            .args(["-N", "1"]);
        command
    })
}

/// microsocks, SOCKS5 asking every connection for `USER:PASSWORD` (RFC 1929).
pub(crate) fn microsocks() -> RunningProxy {
    let binary = find("TETHER_MICROSOCKS", "microsocks");
    start(|_dir, port| {
        let mut command = Command::new(&binary);
        command.args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-u",
            USER,
            "-P",
            PASSWORD,
        ]);
        command
    })
}

/// Runs the command `setup` writes for a temp dir and a free port; returns once it listens.
/// A proxy that exits at start (another child took its port) is started again on another.
fn start(mut setup: impl FnMut(&PathBuf, u16) -> Command) -> RunningProxy {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    const ATTEMPTS: usize = 3;
    for attempt in 1..=ATTEMPTS {
        let dir = std::env::temp_dir().join(format!(
            "tether-proxy-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("proxy temp dir");
        // The proxies drop root privileges (to nobody) and still write their logs here.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let port = port::unused_port();
        let child = setup(&dir, port)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("proxy started");
        let mut proxy = RunningProxy { port, child, dir };
        let deadline = Instant::now() + START_LIMIT;
        let exited = loop {
            if let Some(status) = proxy.child.try_wait().expect("proxy status") {
                break status;
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return proxy;
            }
            assert!(
                Instant::now() < deadline,
                "the proxy did not listen within {START_LIMIT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            attempt < ATTEMPTS,
            "the proxy exited at start ({exited}), {ATTEMPTS} times; its log:\n{}",
            proxy.log()
        );
    }
    unreachable!("every attempt returns or panics")
}

/// `$env` if set, else `name` on PATH or in /usr/sbin, /usr/bin; panics naming the fix.
fn find(env: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return path.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into()])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{name} not found: run scripts/install-proxies.sh or set {env}"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}
