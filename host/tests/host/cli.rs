//! Through the real binary: a secret given to `connection add` is not in the
//! SQLite file in plain text, not in the logs at debug level, `--help`
//! explains the commands, and `profile add --every` keeps to the range.

use crate::common;

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
fn company_time_zones_are_checked_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let company = |args: &[&str]| syncbridge(&data, &[&["company"], args].concat(), None);
    let (ok, out, err) = company(&["add", "acme", "--name", "Acme", "--time-zone", "Nope/Zone"]);
    assert!(!ok, "{out}{err}");
    for part in ["--time-zone", "Nope/Zone", "Europe/Berlin"] {
        assert!(err.contains(part), "{part:?} in {err}");
    }
    let (ok, out, err) = company(&["add", "acme", "--name", "Acme"]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = company(&["update", "acme", "--time-zone", "europe/berlin"]);
    assert!(ok, "{out}{err}");
    // `add` again without --time-zone keeps the zone.
    let (ok, out, err) = company(&["add", "acme", "--name", "Acme AG"]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = company(&["update", "acme", "--time-zone", "Mars/Olympus_Mons"]);
    assert!(!ok && err.contains("Mars/Olympus_Mons"), "{out}{err}");
    let (ok, out, err) = company(&["list"]);
    assert!(ok, "{err}");
    let row = out.lines().find(|l| l.starts_with("acme")).expect(&out);
    assert!(
        row.contains("Acme AG") && row.contains("Europe/Berlin"),
        "{out}"
    );
    let (ok, out, err) = company(&["update", "nobody", "--time-zone", "UTC"]);
    assert!(!ok && err.contains("nobody"), "{out}{err}");
}

/// Installs http-probe and echo-mapper and adds the connection `probe`.
fn probe_and_mapper(data: &std::path::Path) {
    for plugin in ["http-probe", "echo-mapper"] {
        let path = common::package(plugin);
        let (ok, out, err) = syncbridge(data, &["plugin", "install", path.to_str().unwrap()], None);
        assert!(ok, "{out}{err}");
    }
    let (ok, out, err) = syncbridge(
        data,
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
}

#[test]
fn profile_add_refuses_an_interval_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    probe_and_mapper(&data);
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

/// `profile add|show|update|remove` answer as the API does: one service,
/// one set of rules (a connector is no mapper, ids are checked, an existing
/// profile is changed with `update`, not silently replaced).
#[test]
fn profile_commands_share_the_api_rules() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    probe_and_mapper(&data);
    // `connection add` answers as POST /connections does.
    let (ok, _, err) = syncbridge(
        &data,
        &[
            "connection",
            "add",
            "c2",
            "--plugin",
            "http-probe",
            "--config",
            r#"{"base_url":"http://127.0.0.1:9"}"#,
            "--company",
            "nope",
        ],
        None,
    );
    assert!(
        !ok && err.contains("company \"nope\" does not exist"),
        "{err}"
    );
    let (ok, _, err) = syncbridge(
        &data,
        &[
            "connection",
            "add",
            "c2",
            "--plugin",
            "http-probe",
            "--config",
            "[1]",
        ],
        None,
    );
    assert!(!ok && err.contains("config must be a JSON object"), "{err}");
    let add = |name: &str, mapper: &str, extra: &[&str]| {
        let mut args = vec![
            "profile",
            "add",
            name,
            "--source",
            "probe",
            "--source-scope",
            "contacts",
            "--mapper",
            mapper,
            "--target",
            "probe",
            "--target-scope",
            "contacts",
            "--no-run",
        ];
        args.extend_from_slice(extra);
        syncbridge(&data, &args, None)
    };
    let show = || {
        let (ok, out, err) = syncbridge(&data, &["profile", "show", "p", "--json"], None);
        assert!(ok, "{out}{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };

    let (ok, _, err) = add("p", "http-probe", &[]);
    assert!(!ok && err.contains("must be a mapper plugin"), "{err}");
    let (ok, _, err) = add("a.b.c", "echo-mapper", &[]);
    assert!(!ok && err.contains("a.b.c"), "{err}");
    let (ok, _, err) = add("p", "echo-mapper", &["--page-size", "0"]);
    assert!(!ok && err.contains("--page-size"), "{err}");
    let (ok, out, err) = add("p", "echo-mapper", &[]);
    assert!(ok, "{out}{err}");
    let (ok, _, err) = add("p", "echo-mapper", &["--page-size", "5"]);
    assert!(
        !ok && err.contains("already exists") && err.contains("syncbridge profile update p"),
        "{err}"
    );
    assert_eq!(show()["page_size"], 100, "the refused add changed nothing");

    let (ok, out, err) = syncbridge(&data, &["profile", "show", "p"], None);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("probe (contacts)") && out.contains("echo-mapper"),
        "{out}"
    );

    let update = |args: &[&str]| {
        let mut all = vec!["profile", "update", "p", "--no-run"];
        all.extend_from_slice(args);
        syncbridge(&data, &all, None)
    };
    let (ok, _, err) = update(&["--every", "59"]);
    assert!(!ok && err.contains("every 60 to 2678400 seconds"), "{err}");
    let (ok, out, err) = update(&["--every", "120", "--page-size", "7", "--daily", "03:30"]);
    assert!(ok, "{out}{err}");
    let p = show();
    assert_eq!(
        (&p["interval_secs"], &p["page_size"], &p["daily_at"]),
        (
            &serde_json::json!(120),
            &serde_json::json!(7),
            &serde_json::json!("03:30")
        )
    );
    let (ok, out, err) = update(&["--no-every", "--enabled", "false"]);
    assert!(ok, "{out}{err}");
    let p = show();
    assert_eq!(
        (&p["interval_secs"], &p["enabled"]),
        (&serde_json::Value::Null, &serde_json::json!(false))
    );
    assert_eq!(p["daily_at"], "03:30", "left out: kept");

    let (ok, out, err) = syncbridge(&data, &["profile", "remove", "p"], None);
    assert!(ok, "{out}{err}");
    let (ok, _, err) = syncbridge(&data, &["profile", "show", "p"], None);
    assert!(!ok && err.contains("does not exist"), "{err}");
}

/// The README's walk-through through the real binary against the
/// simulators: output a person reads (no Rust `Debug` values), `runs RUN`
/// lists the run's item outcomes, and a closed pipe ends the process quietly.
#[tokio::test(flavor = "multi_thread")]
async fn the_walkthrough_prints_for_people() {
    let root = common::workspace();
    let seed = std::fs::read_to_string(root.join("demo/seed.json")).unwrap();
    let sim = syncbridge_sim::Simulator::start(syncbridge_sim::SimConfig {
        services: syncbridge_sim::Services {
            graph: true,
            autotask: true,
            ..syncbridge_sim::Services::NONE
        },
        seed: Some(syncbridge_sim::Seed::from_json(&seed).unwrap()),
        ..syncbridge_sim::SimConfig::all()
    })
    .await
    .unwrap();
    let base = sim.base_url();
    let tenant = "contoso.onmicrosoft.com";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sb = |args: &[&str], stdin: Option<&str>| {
        let (ok, out, err) = syncbridge(&data, args, stdin);
        assert!(ok, "syncbridge {args:?}: {out}{err}");
        out
    };
    for plugin in ["graph", "autotask", "m365-psa-contacts"] {
        sb(
            &[
                "plugin",
                "install",
                common::package(plugin).to_str().unwrap(),
            ],
            None,
        );
    }
    let graph = format!(r#"{{"graph_url":"{base}/v1.0","tenant":"{tenant}","with_groups":true}}"#);
    let graph_creds = format!(
        r#"{{"default":{{"kind":"oauth2-client-credentials","client_id":"22222222-2222-4222-8222-222222222222","client_secret":"demo-secret","token_url":"{base}/{tenant}/oauth2/v2.0/token","scope":"https://graph.microsoft.com/.default"}}}}"#
    );
    let loopback = [
        "--allow-host",
        "127.0.0.1",
        "--allow-private-network",
        "--credentials-stdin",
    ];
    let mut add_m365 = vec![
        "connection",
        "add",
        "m365",
        "--plugin",
        "graph",
        "--config",
        &graph,
    ];
    add_m365.extend(loopback);
    sb(&add_m365, Some(&graph_creds));
    let psa =
        format!(r#"{{"api_user":"api@msp.example","zone_lookup_url":"{base}/atservicesrest"}}"#);
    let mut add_psa = vec![
        "connection",
        "add",
        "psa",
        "--plugin",
        "autotask",
        "--config",
        &psa,
    ];
    add_psa.extend(loopback);
    sb(
        &add_psa,
        Some(
            r#"{"default":{"kind":"headers","headers":{"ApiIntegrationCode":"DEMO","UserName":"api@msp.example","Secret":"at-secret"}}}"#,
        ),
    );
    let options = std::fs::read_to_string(root.join("demo/mapper-options.json")).unwrap();
    let rules = std::fs::read_to_string(root.join("demo/rules.json")).unwrap();
    sb(
        &[
            "profile",
            "add",
            "contoso",
            "--source",
            "m365",
            "--source-scope",
            "users",
            "--mapper",
            "m365-psa-contacts",
            "--mapper-options",
            &options,
            "--rules",
            &rules,
            "--target",
            "psa",
            "--target-scope",
            "contacts:company=1",
            "--no-run",
        ],
        None,
    );
    let run = sb(&["run", "contoso", "--quiet"], None);
    assert!(run.contains("(run, succeeded)"), "{run}");
    let run_id = run
        .split_whitespace()
        .nth(1)
        .expect("`run RUN of PROFILE` first")
        .to_owned();

    // `runs RUN`: the summary and one line per item outcome.
    let shown = sb(&["runs", &run_id], None);
    assert!(
        shown.contains("PHASE") && shown.contains("applied"),
        "{shown}"
    );
    let applied = shown.lines().filter(|l| l.contains(" applied ")).count();
    assert!(applied >= 3, "item outcomes listed: {shown}");

    let explained = sb(
        &["explain", "contoso", "u-02", "--field", "last_name"],
        None,
    );
    assert!(explained.contains("last_name = \""), "{explained}");
    for out in [&run, &shown, &explained] {
        assert!(
            !out.contains("Some(") && !out.contains("None") && !out.contains("Succeeded"),
            "no Rust Debug values: {out}"
        );
    }

    // What the API has under /plans, /quarantine and /alerts, the CLI has too.
    let dry = sb(&["run", "contoso", "--dry-run", "--quiet"], None);
    let plan = dry
        .split(|c: char| c.is_whitespace() || c == ':' || c == '`')
        .find(|w| w.starts_with("plan-"))
        .unwrap_or_else(|| panic!("the dry run names its plan: {dry}"))
        .to_owned();
    let listed = sb(&["plans", "--profile", "contoso"], None);
    assert!(
        listed.contains(&plan) && listed.contains("proposed"),
        "{listed}"
    );
    let discarded = sb(&["plan", &plan, "--discard"], None);
    assert!(discarded.contains("discarded plan"), "{discarded}");
    let (ok, _, err) = syncbridge(&data, &["plan", &plan, "--discard"], None);
    assert!(!ok && err.contains("discarded"), "only open plans: {err}");
    assert!(sb(&["quarantine", "list"], None).contains("CLASS"));
    let (ok, _, err) = syncbridge(&data, &["quarantine", "retry", "contoso", "nobody"], None);
    assert!(!ok && err.contains("does not exist"), "{err}");
    assert!(sb(&["alerts", "--all"], None).contains("SEVERITY"));
    let (ok, _, err) = syncbridge(&data, &["alerts", "--resolve", "alert-none"], None);
    assert!(!ok && err.contains("does not exist"), "{err}");
    assert!(sb(&["conflicts", "list"], None).contains("AGREED"));
    let (ok, _, err) = syncbridge(
        &data,
        &[
            "conflicts",
            "resolve",
            "contoso",
            "u-02",
            "start",
            "--winner",
            "source",
        ],
        None,
    );
    assert!(!ok && err.contains("does not exist"), "{err}");

    // A run whose items fail is partial: exit status 2, and the error says where to look.
    assert!(sim
        .graph()
        .update_user(tenant, "u-02", serde_json::json!({"jobTitle": "Lead"})));
    sim.add_fault(syncbridge_sim::FaultRule::sequence(
        "PATCH */Companies/*/Contacts",
        &[400],
    ))
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_syncbridge"))
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "run",
            "contoso",
            "--quiet",
        ])
        .env_remove("SYNCBRIDGE_MASTER_KEY")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stdout.contains("(run, partial)"), "{stdout}");
    assert!(stderr.contains("quarantine"), "{stderr}");
    // `--full` reads every item again; the refused update goes through now.
    let full = sb(&["run", "contoso", "--full", "--quiet"], None);
    assert!(full.contains("(run, succeeded)"), "{full}");

    // A reader that closed the pipe before the output: no panic, SIGPIPE's status.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_syncbridge"))
        .args(["--data-dir", data.to_str().unwrap(), "runs"])
        .env_remove("SYNCBRIDGE_MASTER_KEY")
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(141), "{err}");
}
