//! `tether tls-demo` end to end: the binary as a learner runs it.

use std::process::{Command, Stdio};

fn tether() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tether"))
}

#[test]
fn tls_demo_without_arguments_prints_the_five_steps_and_the_lesson() {
    let out = tether()
        .arg("tls-demo")
        .env_remove("SSLKEYLOGFILE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "step 1 ",
        "step 2 ",
        "step 3a ",
        "step 3b ",
        "step 3c ",
        "step 4 ",
        "step 5 ",
        "ClientHello",
        "ServerHello",
        "Certificate",
        "ClientKeyExchange (RSA)",
        "Finished (encrypted)",
        "application_data record",
        "DECRYPTED with the stolen key",
        "is forward secret",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn tls_demo_writes_sslkeylogfile_lines() {
    let path = std::env::temp_dir().join(format!("tether-cli-keylog-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let out = tether()
        .arg("tls-demo")
        .env("SSLKEYLOGFILE", &path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let log = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    // Two sessions, logged by client and server each.
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 4, "{log}");
    for line in lines {
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(parts[0], "CLIENT_RANDOM");
        assert_eq!(parts[1].len(), 64);
        assert_eq!(parts[2].len(), 96);
    }
}

#[test]
fn tls_demo_connect_fails_with_the_precise_error_and_nonzero_exit() {
    // A listener that is not TLS: it answers the ClientHello with HTTP.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    let out = tether()
        .args([
            "tls-demo",
            "--connect",
            &addr.to_string(),
            "--server-name",
            "localhost",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    server.join().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ClientHello"), "{err}");
    assert!(
        err.contains("handshake failed: malformed record content type"),
        "{err}"
    );
}

#[test]
fn tls_demo_rejects_an_unknown_cipher_name() {
    let out = tether()
        .args(["tls-demo", "--cipher", "RC4-MD5"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown cipher suite"));
}
