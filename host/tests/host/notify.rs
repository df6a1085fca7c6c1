//! E-mail notifications against a real SMTP server: Python's aiosmtpd,
//! started per test on a free loopback port, writing every accepted message
//! (parsed by Python's `email` package) to a directory as JSON.
//!
//! Needs `python3-aiosmtpd` (scripts/test.sh installs it). Without it the
//! tests are skipped loudly, except under `CI=true` where they fail.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use syncbridge::notify::{
    Notification, NotificationKind, Notifier, NotifyError, Recipients, SmtpNotifier, SmtpSettings,
    Tls,
};
use syncbridge::secrets::SecretString;
use syncbridge_sim::tls::TlsMaterial;
use syncbridge_sim::TlsMode;

/// The SMTP server: an aiosmtpd `SMTP` protocol on a socket bound to port 0,
/// which prints its port once it listens. argv: outdir mode user password
/// tls certfile keyfile. Modes: accept, defer-once (451 on the first DATA),
/// defer-always, reject (550 on RCPT). tls: none, starttls (offered and
/// required), implicit. Every RCPT and DATA leaves an empty marker file so tests
/// can count attempts.
const SERVER: &str = r#"
import asyncio, email, email.policy, json, os, socket, ssl, sys
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

outdir, mode, user, password, tls, certfile, keyfile = sys.argv[1:8]
counts = {"rcpt": 0, "data": 0}

def mark(kind):
    counts[kind] += 1
    open(os.path.join(outdir, "%s-%d" % (kind, counts[kind])), "w").close()
    return counts[kind]

class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        mark("rcpt")
        if mode == "reject":
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        n = mark("data")
        if mode == "defer-always" or (mode == "defer-once" and n == 1):
            return "451 4.3.0 try again later"
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "subject": str(msg["Subject"]),
            "content_type": msg.get_content_type(),
            "body": msg.get_content().replace("\r\n", "\n"),
            "raw": envelope.content.decode("utf-8", "replace"),
            "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
            "login": session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None,
        }
        path = os.path.join(outdir, "msg-%d.json" % n)
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 OK"

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login.decode() == user
          and auth_data.password.decode() == password)
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

async def main():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    kwargs, server_ssl = {}, None
    if user:
        kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=(tls != "none"))
    if tls != "none":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        if tls == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        else:
            server_ssl = context
    handler = Handler()
    loop = asyncio.get_running_loop()
    await loop.create_server(lambda: SMTP(handler, hostname="smtp.test", **kwargs), sock=sock, ssl=server_ssl)
    print(sock.getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"#;

/// A Python 3 with aiosmtpd: `SYNCBRIDGE_TEST_PYTHON`, `python3`, or the
/// system `/usr/bin/python3` (where the Debian package installs it when
/// another `python3` comes first on PATH). `None` means skip.
fn python() -> Option<String> {
    let mut candidates: Vec<String> = std::env::var("SYNCBRIDGE_TEST_PYTHON")
        .into_iter()
        .collect();
    candidates.extend(["python3".to_owned(), "/usr/bin/python3".to_owned()]);
    for python in &candidates {
        let ok = Command::new(python)
            .args(["-c", "import aiosmtpd.smtp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(python.clone());
        }
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the SMTP notification tests need Python's aiosmtpd, which is required in CI: install python3-aiosmtpd (apt-get install python3-aiosmtpd; scripts/test.sh does)");
    }
    eprintln!("\n*** SKIPPING the SMTP notification test: Python's aiosmtpd is not installed (tried {candidates:?}). Install python3-aiosmtpd to run it. ***\n");
    None
}

struct SmtpServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpServer {
    /// Starts a plain-text server; `None` when aiosmtpd is missing (outside CI).
    fn start(mode: &str, login: Option<(&str, &str)>) -> Option<Self> {
        Self::start_tls(mode, login, Tls::None, None)
    }

    /// Starts a server with TLS from `material` (required unless `tls` is `None`).
    fn start_tls(
        mode: &str,
        login: Option<(&str, &str)>,
        tls: Tls,
        material: Option<&TlsMaterial>,
    ) -> Option<Self> {
        let python = python()?;
        let dir = tempfile::tempdir().unwrap();
        let (user, password) = login.unwrap_or(("", ""));
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        if let Some(m) = material {
            let chain: String = m.chain.iter().map(|c| pem("CERTIFICATE", c)).collect();
            std::fs::write(&cert, chain).unwrap();
            std::fs::write(&key, pem("PRIVATE KEY", &m.key)).unwrap();
        }
        let tls_arg = match tls {
            Tls::None => "none",
            Tls::StartTls => "starttls",
            Tls::Implicit => "implicit",
        };
        std::fs::create_dir(dir.path().join("inbox")).unwrap();
        let stderr = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut child = Command::new(python)
            .args(["-c", SERVER])
            .arg(dir.path().join("inbox").to_str().unwrap())
            .args([mode, user, password, tls_arg])
            .args([&cert, &key])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("python3 starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = match line.trim().parse() {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
                panic!("the aiosmtpd test server did not start:\n{log}");
            }
        };
        Some(Self { child, port, dir })
    }

    fn inbox(&self) -> PathBuf {
        self.dir.path().join("inbox")
    }

    fn settings(&self) -> SmtpSettings {
        SmtpSettings {
            host: "127.0.0.1".into(),
            port: self.port,
            tls: Tls::None,
            username: None,
            password: None,
            from: "Syncbridge <syncbridge@msp.example>".into(),
            timeout: Duration::from_secs(10),
            extra_ca_pems: Vec::new(),
        }
    }

    fn count(&self, kind: &str) -> usize {
        marker_count(&self.inbox(), kind)
    }

    /// The accepted messages, oldest first.
    fn messages(&self) -> Vec<serde_json::Value> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.inbox())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn marker_count(dir: &Path, kind: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.strip_prefix(kind)
                .is_some_and(|rest| rest.starts_with('-') && !rest.ends_with(".json"))
        })
        .count()
}

fn failure() -> Notification {
    Notification::run_failed(
        "tickets-to-crm",
        "Contoso Ltd",
        "run-42",
        "the CRM answered 401 Unauthorized for connection crm",
        "renew the API key of connection crm, then retry the run",
    )
}

#[tokio::test]
async fn sends_a_failure_to_every_recipient() {
    let Some(server) = SmtpServer::start("accept", None) else {
        return;
    };
    let notifier = SmtpNotifier::new(server.settings()).unwrap();
    let to = Recipients::parse(" ops@msp.example; Night Desk <noc@msp.example>;; ").unwrap();
    let n = failure();
    notifier
        .send(&to, &n)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));

    let messages = server.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert_eq!(m["mail_from"], "syncbridge@msp.example");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["ops@msp.example", "noc@msp.example"])
    );
    assert_eq!(m["from"], "Syncbridge <syncbridge@msp.example>");
    let to_header = m["to"].as_str().unwrap();
    assert!(
        to_header.contains("ops@msp.example") && to_header.contains("Night Desk <noc@msp.example>"),
        "{to_header}"
    );
    assert_eq!(
        m["subject"],
        "[syncbridge] Run failed: tickets-to-crm (Contoso Ltd)"
    );
    assert_eq!(m["content_type"], "text/plain");
    let body = m["body"].as_str().unwrap();
    assert!(
        body.contains("The sync run run-42 of profile \"tickets-to-crm\" for Contoso Ltd failed."),
        "{body}"
    );
    assert!(
        body.contains("  the CRM answered 401 Unauthorized for connection crm\n"),
        "{body}"
    );
    assert!(
        body.contains("  renew the API key of connection crm, then retry the run\n"),
        "{body}"
    );
    assert!(m["raw"].as_str().unwrap().contains("Message-ID:"));
    assert!(m["login"].is_null());
}

#[tokio::test]
async fn logs_in_with_the_password_and_never_shows_it() {
    const PASSWORD: &str = "pw-Tr0ub4dor-3";
    let Some(server) = SmtpServer::start("accept", Some(("alerts@msp.example", PASSWORD))) else {
        return;
    };
    let mut settings = server.settings();
    settings.username = Some("alerts@msp.example".into());
    settings.password = Some(SecretString::new(PASSWORD));
    assert!(!format!("{settings:?}").contains(PASSWORD));
    let notifier = SmtpNotifier::new(settings.clone()).unwrap();
    assert!(!format!("{notifier:?}").contains(PASSWORD));
    notifier
        .check()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));

    // Through the trait object, as the scheduler will hold it.
    let dyn_notifier: &dyn Notifier = &notifier;
    let to = Recipients::parse("ops@msp.example").unwrap();
    let n = Notification::run_succeeded("users", "run-7", &[("created", 3), ("updated", 12)]);
    dyn_notifier
        .send(&to, &n)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));

    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m["login"], "alerts@msp.example");
    assert_eq!(
        m["subject"],
        "[syncbridge] Run applied: users: 3 created, 12 updated"
    );
    assert!(!m["raw"].as_str().unwrap().contains(PASSWORD));

    // A wrong password: a clear error that names the user, not the password.
    let mut wrong = settings;
    wrong.password = Some(SecretString::new("not-the-password"));
    let e = SmtpNotifier::new(wrong)
        .unwrap()
        .send(&to, &n)
        .await
        .unwrap_err();
    assert!(matches!(e, NotifyError::AuthFailed { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("rejected the login of user `alerts@msp.example`"),
        "{text}"
    );
    assert!(text.contains("SYNCBRIDGE_SMTP_PASSWORD_FILE"), "{text}");
    assert!(!text.contains("not-the-password") && !format!("{e:?}").contains("not-the-password"));
    assert_eq!(server.messages().len(), 1);

    // No login at all where one is required.
    let e = SmtpNotifier::new(server.settings())
        .unwrap()
        .send(&to, &n)
        .await
        .unwrap_err();
    assert!(matches!(e, NotifyError::AuthRequired { .. }), "{e:?}");
    assert!(e.to_string().contains("requires a login"), "{e}");
}

#[tokio::test]
async fn a_refused_connection_says_to_check_host_and_port() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut settings = SmtpSettings::new("127.0.0.1", "syncbridge@msp.example");
    settings.port = port;
    settings.tls = Tls::None;
    let e = SmtpNotifier::new(settings)
        .unwrap()
        .send(&Recipients::parse("ops@msp.example").unwrap(), &failure())
        .await
        .unwrap_err();
    assert!(matches!(e, NotifyError::Refused { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!("SMTP server 127.0.0.1:{port} refused the connection: check the smtp host/port setting (SYNCBRIDGE_SMTP_URL) and that the server is running")
    );
}

#[tokio::test]
async fn a_transient_rejection_is_retried_once() {
    let Some(server) = SmtpServer::start("defer-once", None) else {
        return;
    };
    let notifier = SmtpNotifier::new(server.settings())
        .unwrap()
        .with_retry_delay(Duration::from_millis(50));
    let to = Recipients::parse("ops@msp.example").unwrap();
    notifier
        .send(&to, &failure())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    assert_eq!(server.count("data"), 2);
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn a_second_transient_rejection_is_an_error() {
    let Some(server) = SmtpServer::start("defer-always", None) else {
        return;
    };
    let notifier = SmtpNotifier::new(server.settings())
        .unwrap()
        .with_retry_delay(Duration::from_millis(50));
    let to = Recipients::parse("ops@msp.example").unwrap();
    let e = notifier.send(&to, &failure()).await.unwrap_err();
    assert!(
        matches!(e, NotifyError::Deferred { ref code, .. } if code == "451"),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("deferred the message twice (451"),
        "{e}"
    );
    assert_eq!(server.count("data"), 2, "exactly one retry");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn a_permanent_rejection_is_not_retried() {
    let Some(server) = SmtpServer::start("reject", None) else {
        return;
    };
    let notifier = SmtpNotifier::new(server.settings())
        .unwrap()
        .with_retry_delay(Duration::from_millis(50));
    let to = Recipients::parse("nobody@msp.example").unwrap();
    let n = Notification::new(NotificationKind::Alert, "hello", "body");
    let e = notifier.send(&to, &n).await.unwrap_err();
    assert!(
        matches!(e, NotifyError::Rejected { ref code, .. } if code == "550"),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("permanently rejected") && text.contains("mailbox unavailable"),
        "{text}"
    );
    assert!(text.contains("not retried"), "{text}");
    assert_eq!(server.count("rcpt"), 1, "5xx must not be retried");
}

#[tokio::test]
async fn starttls_without_server_support_is_a_clear_error() {
    let Some(server) = SmtpServer::start("accept", None) else {
        return;
    };
    let mut settings = server.settings();
    settings.tls = Tls::StartTls;
    let e = SmtpNotifier::new(settings)
        .unwrap()
        .send(&Recipients::parse("ops@msp.example").unwrap(), &failure())
        .await
        .unwrap_err();
    assert!(
        matches!(e, NotifyError::StartTlsUnsupported { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("does not offer STARTTLS"), "{e}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn starttls_with_the_operator_ca_and_a_login() {
    const PASSWORD: &str = "pw-over-starttls-77";
    let material = TlsMaterial::generate(TlsMode::GeneratedCa).unwrap();
    let Some(server) = SmtpServer::start_tls(
        "accept",
        Some(("alerts", PASSWORD)),
        Tls::StartTls,
        Some(&material),
    ) else {
        return;
    };
    let mut settings = server.settings();
    settings.tls = Tls::StartTls;
    settings.username = Some("alerts".into());
    settings.password = Some(SecretString::new(PASSWORD));
    settings.extra_ca_pems = vec![material.trust_pem.clone().into_bytes()];
    let to = Recipients::parse("ops@msp.example").unwrap();
    let n = Notification::brakes_held("users", "run-9", "removes 40 of 100", "approve run-9");
    SmtpNotifier::new(settings)
        .unwrap()
        .send(&to, &n)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["tls"], true);
    assert_eq!(messages[0]["login"], "alerts");
    assert_eq!(
        messages[0]["subject"],
        "[syncbridge] Approval needed: users (run run-9)"
    );
}

#[tokio::test]
async fn implicit_tls_trusts_only_known_cas() {
    let material = TlsMaterial::generate(TlsMode::GeneratedCa).unwrap();
    let Some(server) = SmtpServer::start_tls("accept", None, Tls::Implicit, Some(&material)) else {
        return;
    };
    let to = Recipients::parse("ops@msp.example").unwrap();
    let mut settings = server.settings();
    settings.tls = Tls::Implicit;

    // The server's CA is not trusted yet: a TLS error that says what to check.
    let e = SmtpNotifier::new(settings.clone())
        .unwrap()
        .send(&to, &failure())
        .await
        .unwrap_err();
    assert!(matches!(e, NotifyError::Tls { .. }), "{e:?}");
    assert!(e.to_string().contains("--ca-cert"), "{e}");
    assert!(server.messages().is_empty());

    settings.extra_ca_pems = vec![material.trust_pem.clone().into_bytes()];
    SmtpNotifier::new(settings)
        .unwrap()
        .send(&to, &failure())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["tls"], true);
}
