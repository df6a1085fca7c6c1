//! Through the real binary: a secret given to `connection add` is not in the
//! SQLite file in plain text, not in the logs at debug level, `--help`
//! explains the commands, and `profile add --every` keeps to the range.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

const SECRET: &str = "Pl41n-Text-Never-4817";

fn syncbridge(
    data: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_syncbridge"))
        .args(["--data-dir", data.to_str().unwrap(), "--log", "debug"])
        .args(args)
        .env_remove("SYNCBRIDGE_MASTER_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_never_reaches_disk_logs_or_output() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let probe = common::package("http-probe");

    // A service that rejects the credentials, so the test output includes an auth failure.
    let base = common::serve(axum::Router::new().route(
        "/health",
        axum::routing::get(|| async { (axum::http::StatusCode::UNAUTHORIZED, "no") }),
    ))
    .await;

    let (ok, out, err) = syncbridge(&data, &["plugin", "install", probe.to_str().unwrap()], None);
    assert!(ok, "{out}{err}");
    let creds = format!(
        r#"{{"default":{{"kind":"basic","username":"svc@contoso.test","password":"{SECRET}"}}}}"#
    );
    let config = format!(r#"{{"base_url":"{base}"}}"#);
    let (ok, out_add, err_add) = syncbridge(
        &data,
        &[
            "connection",
            "add",
            "probe",
            "--plugin",
            "http-probe",
            "--config",
            &config,
            "--allow-host",
            "127.0.0.1",
            "--allow-private-network",
            "--credentials-stdin",
        ],
        Some(&creds),
    );
    assert!(ok, "{out_add}{err_add}");
    let (ok, out_test, err_test) = syncbridge(&data, &["connection", "test", "probe"], None);
    assert!(!ok, "the test must fail: the service answers 401");
    assert!(
        out_test.contains("credentials") && out_test.contains("remedy"),
        "{out_test}"
    );
    let (_, out_list, err_list) = syncbridge(&data, &["connection", "list"], None);
    assert!(out_list.contains("default(basic)"), "{out_list}");

    // Debug-level logs were on: the plugin's request was logged, the secret was not.
    let all_output = [
        out_add,
        err_add,
        out_test,
        err_test.clone(),
        out_list,
        err_list,
    ]
    .concat();
    assert!(
        err_test.contains("outbound request"),
        "debug logging of requests is expected:\n{err_test}"
    );
    assert!(
        !all_output.contains(SECRET),
        "secret leaked into output:\n{all_output}"
    );
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("svc@contoso.test:{SECRET}"));
    assert!(!all_output.contains(&basic));

    // Nothing on disk holds it in plain text (database, WAL, plugin state, cache).
    let mut files = vec![];
    let mut stack = vec![data.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else {
                files.push(p)
            }
        }
    }
    assert!(files
        .iter()
        .any(|f| f.to_string_lossy().ends_with("syncbridge.db")));
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        for needle in [SECRET.as_bytes(), basic.as_bytes()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds the secret",
                f.display()
            );
        }
    }

    // The key file is private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn help_explains_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, _) = syncbridge(dir.path(), &["connection", "add", "--help"], None);
    assert!(ok);
    for expected in [
        "--allow-host",
        "--credentials-stdin",
        "oauth2-client-credentials",
        "--allow-private-network",
    ] {
        assert!(out.contains(expected), "missing {expected} in:\n{out}");
    }
    let (ok, out, _) = syncbridge(dir.path(), &["--help"], None);
    assert!(ok && out.contains("serve") && out.contains("plugin") && out.contains("connection"));
}

/// The binary under umask 022 (as a service manager or login shell commonly
/// sets it), so what it creates would be readable by everyone by default.
#[cfg(unix)]
fn under_umask_022(data: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new("sh");
    command
        .args(["-c", "umask 022 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_syncbridge"))
        .args(["--data-dir", data.to_str().unwrap(), "--log", "info"])
        .args(args)
        .env_remove("SYNCBRIDGE_MASTER_KEY")
        .env_remove("SYNCBRIDGE_DATABASE_URL");
    command
}

/// `syncbridge serve` with its log in `log`, once it accepts connections
/// (the store is open, so SQLite's WAL and shared-memory files exist).
#[cfg(unix)]
fn serve_until_ready(data: &std::path::Path, log: &std::path::Path) -> std::process::Child {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = under_umask_022(data, &["serve", "--no-scheduler", "--listen", &listen])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(&listen).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "serve exited with {status}: {}",
                std::fs::read_to_string(log).unwrap()
            );
        }
        assert!(std::time::Instant::now() < deadline, "serve did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child
}

#[cfg(unix)]
#[test]
fn the_data_directory_and_database_files_are_private_to_the_owner() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| {
        let mode = std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode();
        format!("{:04o}", mode & 0o777)
    };
    let set_mode = |p: &std::path::Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let db_files = ["syncbridge.db", "syncbridge.db-wal", "syncbridge.db-shm"];
    let assert_private = |data: &std::path::Path| {
        assert_eq!(mode(data), "0700", "data directory {}", data.display());
        for name in db_files {
            assert_eq!(mode(&data.join(name)), "0600", "{name}");
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // A first start creates them private: a command that writes, then the
    // server, whose open store has the WAL and shared-memory files.
    let out = under_umask_022(&data, &["company", "add", "acme", "--name", "Acme"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mode(&data), "0700", "data directory");
    assert_eq!(mode(&data.join("syncbridge.db")), "0600", "syncbridge.db");
    let mut server = serve_until_ready(&data, &dir.path().join("serve-1.log"));
    assert_private(&data);

    // An existing setup readable by everyone (the server killed, so the WAL
    // and shared-memory files stay behind) is tightened, and the log says so.
    set_mode(&data, 0o755);
    for name in db_files {
        set_mode(&data.join(name), 0o644);
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let log = dir.path().join("serve-2.log");
    let mut server = serve_until_ready(&data, &log);
    assert_private(&data);
    server.kill().unwrap();
    server.wait().unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("tightened it to 0700") && log.contains("tightened it to 0600"),
        "{log}"
    );
    for name in db_files {
        assert!(
            log.contains(&format!("{name} was readable")),
            "{name}: {log}"
        );
    }
}

/// `connection update` follows the API's rule: moving where requests go
/// needs the credentials entered again, and the old secret never travels.
#[tokio::test(flavor = "multi_thread")]
async fn connection_update_refuses_to_repoint_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let probe = common::package("http-probe");
    let (evil, seen) = common::recording_service().await;

    let (ok, out, err) = syncbridge(&data, &["plugin", "install", probe.to_str().unwrap()], None);
    assert!(ok, "{out}{err}");
    let creds = format!(r#"{{"default":{{"kind":"bearer","token":"{SECRET}"}}}}"#);
    let (ok, out, err) = syncbridge(
        &data,
        &[
            "connection",
            "add",
            "probe",
            "--plugin",
            "http-probe",
            "--config",
            r#"{"base_url":"http://127.0.0.1:9"}"#,
            "--allow-host",
            "127.0.0.1",
            "--allow-private-network",
            "--credentials-stdin",
        ],
        Some(&creds),
    );
    assert!(ok, "{out}{err}");

    let evil_config = format!(r#"{{"base_url":"{evil}"}}"#);
    let (ok, out, err) = syncbridge(
        &data,
        &["connection", "update", "probe", "--config", &evil_config],
        None,
    );
    assert!(!ok, "re-pointing without credentials must fail: {out}");
    assert!(
        err.contains("credentials entered again") && err.contains("default"),
        "{err}"
    );
    let (ok, _, err) = syncbridge(&data, &["connection", "test", "probe"], None);
    assert!(!ok, "the old URL does not answer: {err}");
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );

    let new_secret = "N3w-Secret-For-The-New-Host";
    let (ok, out, err) = syncbridge(
        &data,
        &[
            "connection",
            "update",
            "probe",
            "--config",
            &evil_config,
            "--credentials-stdin",
        ],
        Some(&format!(
            r#"{{"default":{{"kind":"bearer","token":"{new_secret}"}}}}"#
        )),
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("credentials changed: default"), "{out}");
    let (ok, out, err) = syncbridge(&data, &["connection", "test", "probe"], None);
    assert!(ok, "{out}{err}");
    assert_eq!(*seen.lock().unwrap(), [format!("Bearer {new_secret}")]);
}

#[test]
fn profile_add_refuses_an_interval_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for plugin in ["http-probe", "echo-mapper"] {
        let path = common::package(plugin);
        let (ok, out, err) =
            syncbridge(&data, &["plugin", "install", path.to_str().unwrap()], None);
        assert!(ok, "{out}{err}");
    }
    let (ok, out, err) = syncbridge(
        &data,
        &[
            "connection",
            "add",
            "probe",
            "--plugin",
            "http-probe",
            "--config",
            r#"{"base_url":"http://127.0.0.1:9"}"#,
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    let add = |every: &str| {
        syncbridge(
            &data,
            &[
                "profile",
                "add",
                "p",
                "--source",
                "probe",
                "--source-scope",
                "contacts",
                "--mapper",
                "echo-mapper",
                "--target",
                "probe",
                "--target-scope",
                "contacts",
                "--no-run",
                "--every",
                every,
            ],
            None,
        )
    };
    for bad in ["59", "2678401", "18446744073709551615"] {
        let (ok, out, err) = add(bad);
        assert!(!ok, "--every {bad} is refused: {out}{err}");
        assert!(
            err.contains("every 60 to 2678400 seconds"),
            "--every {bad}: the range is named: {err}"
        );
        let (_, list, _) = syncbridge(&data, &["profile", "list"], None);
        assert!(
            !list.contains("probe:contacts"),
            "--every {bad}: nothing saved: {list}"
        );
    }
    let (ok, out, err) = add("60");
    assert!(ok, "{out}{err}");
}

/// `--log-format json` writes one JSON object a line; text logs written to a
/// pipe carry no terminal colour codes.
#[test]
fn logs_are_json_on_request_and_plain_in_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let probe = common::package("http-probe");
    let (ok, out, err) = syncbridge(
        &data,
        &[
            "--log-format",
            "json",
            "plugin",
            "install",
            probe.to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "debug logging yields lines");
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
    assert!(err.contains("plugin installed"), "{err}");
    let (ok, out, err) = syncbridge(&data, &["plugin", "install", probe.to_str().unwrap()], None);
    assert!(ok, "{out}{err}");
    assert!(err.contains("plugin installed"), "{err}");
    assert!(!err.contains('\u{1b}'), "colour codes in a pipe: {err:?}");
}
