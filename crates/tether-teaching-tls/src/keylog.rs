//! The NSS key log format, so Wireshark can decrypt a capture of a teaching session.
//!
//! One line per session: `CLIENT_RANDOM <64 hex digits> <96 hex digits of master secret>`.
//! Point Wireshark's TLS "(Pre)-Master-Secret log filename" at the file.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::wire::hex;

/// Receives the secrets of each session, in the NSS key log format.
pub trait KeyLog: Send + Sync {
    /// Called once per handshake, when the master secret is known. `label` is
    /// `CLIENT_RANDOM` for TLS 1.2.
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]);
}

/// One line of the NSS key log format.
///
/// ```
/// let line = tether_teaching_tls::key_log_line("CLIENT_RANDOM", &[0xab; 32], &[0x01; 48]);
/// assert!(line.starts_with("CLIENT_RANDOM abab"));
/// assert_eq!(line.len(), "CLIENT_RANDOM ".len() + 64 + 1 + 96);
/// ```
pub fn key_log_line(label: &str, client_random: &[u8], secret: &[u8]) -> String {
    format!("{label} {} {}", hex(client_random), hex(secret))
}

/// Appends key log lines to the file named by `SSLKEYLOGFILE`, like browsers and OpenSSL.
pub struct KeyLogFile {
    path: PathBuf,
    lock: Mutex<()>,
}

impl KeyLogFile {
    /// A key log writing to `$SSLKEYLOGFILE`, or `None` when the variable is unset or empty.
    pub fn from_env() -> Option<Self> {
        let path = std::env::var_os("SSLKEYLOGFILE")?;
        if path.is_empty() {
            return None;
        }
        Some(Self::new(PathBuf::from(path)))
    }

    /// A key log appending to `path`.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            lock: Mutex::new(()),
        }
    }
}

impl std::fmt::Debug for KeyLogFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLogFile")
            .field("path", &self.path)
            .finish()
    }
}

impl KeyLog for KeyLogFile {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        // A poisoned lock only means another writer panicked mid-line; appending is still fine.
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let line = key_log_line(label, client_random, secret);
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = written {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write SSLKEYLOGFILE");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_log_file_appends_nss_lines() {
        let dir = std::env::temp_dir().join(format!("tether-keylog-{}", std::process::id()));
        let log = KeyLogFile::new(dir.clone());
        log.log("CLIENT_RANDOM", &[1; 32], &[2; 48]);
        log.log("CLIENT_RANDOM", &[3; 32], &[4; 48]);
        let text = std::fs::read_to_string(&dir).unwrap();
        std::fs::remove_file(&dir).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            format!("CLIENT_RANDOM {} {}", "01".repeat(32), "02".repeat(48))
        );
    }
}
