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
        &["connection", "add", "probe", "--plugin", "http-probe"],
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
