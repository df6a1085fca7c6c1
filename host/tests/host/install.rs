//! Installing plugin packages: digests pinned and verified, WIT versions
//! checked, components compiled and linked before they are accepted,
//! archives accepted, compiled artifacts cached by digest.

use crate::common;

use std::path::Path;
use syncbridge::hub::HubError;
use syncbridge::package::PackageError;

fn copy_package(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn edit_manifest(dir: &Path, edit: impl Fn(String) -> String) {
    let path = dir.join("plugin.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, edit(text)).unwrap();
}

#[tokio::test]
async fn a_tampered_component_is_refused() {
    let t = common::hub().await;
    let pkg = t.dir.path().join("pkg");
    copy_package(&common::package("http-probe"), &pkg);
    let wasm = pkg.join("http_probe.wasm");
    let mut bytes = std::fs::read(&wasm).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&wasm, bytes).unwrap();
    match t.hub.install_plugin(&pkg, None).await {
        Err(HubError::Package(PackageError::DigestMismatch { .. })) => {}
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert!(t.hub.store().list_plugins().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_operator_can_pin_a_digest() {
    let t = common::hub().await;
    let err = t
        .hub
        .install_plugin(&common::package("http-probe"), Some(&"0".repeat(64)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
}

#[tokio::test]
async fn an_incompatible_wit_version_is_refused_with_a_remedy() {
    let t = common::hub().await;
    let pkg = t.dir.path().join("pkg");
    copy_package(&common::package("http-probe"), &pkg);
    edit_manifest(&pkg, |m| {
        let wit = m
            .lines()
            .find(|l| l.starts_with("wit = "))
            .expect("the manifest names its WIT");
        m.replace(wit, "wit = \"0.2.0\"")
    });
    let err = t.hub.install_plugin(&pkg, None).await.unwrap_err();
    assert!(err.to_string().contains("rebuild the plugin"), "{err}");
}

#[tokio::test]
async fn a_manifest_claiming_0_1_2_for_a_0_1_0_connector_is_refused_naming_the_missing_export() {
    let t = common::hub().await;
    let pkg = t.dir.path().join("pkg");
    copy_package(&common::package("legacy-connector"), &pkg);
    edit_manifest(&pkg, |m| m.replace("wit = \"0.1.0\"", "wit = \"0.1.2\""));
    let err = t
        .hub
        .install_plugin(&pkg, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("connector") && err.contains("field-selection"),
        "{err}"
    );
}

#[tokio::test]
async fn a_manifest_claiming_0_1_1_for_a_0_1_0_mapper_is_refused_naming_the_missing_export() {
    let t = common::hub().await;
    let pkg = t.dir.path().join("pkg");
    copy_package(&common::package("legacy-mapper"), &pkg);
    edit_manifest(&pkg, |m| m.replace("wit = \"0.1.0\"", "wit = \"0.1.1\""));
    let err = t
        .hub
        .install_plugin(&pkg, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("mapper") && err.contains("decide"), "{err}");
}

#[tokio::test]
async fn a_manifest_claiming_0_1_4_for_a_0_1_3_mapper_is_refused_naming_the_missing_export() {
    let t = common::hub().await;
    let pkg = t.dir.path().join("pkg");
    copy_package(&common::package("legacy-mapper-0-1-3"), &pkg);
    edit_manifest(&pkg, |m| m.replace("wit = \"0.1.3\"", "wit = \"0.1.4\""));
    let err = t
        .hub
        .install_plugin(&pkg, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mapper") && err.contains("mailbox-mapper-api"),
        "{err}"
    );
}

#[tokio::test]
async fn a_component_of_the_wrong_world_is_refused() {
    let t = common::hub().await;
    let pkg = t.dir.path().join("pkg");
    copy_package(&common::package("echo-mapper"), &pkg);
    edit_manifest(&pkg, |m| {
        m.replace("kind = \"mapper\"", "kind = \"connector\"")
    });
    let err = t.hub.install_plugin(&pkg, None).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("does not fit the `connector` world"),
        "{err}"
    );
}

#[tokio::test]
async fn something_that_is_not_a_component_is_refused() {
    let t = common::hub().await;
    let pkg = t.dir.path().join("pkg");
    copy_package(&common::package("http-probe"), &pkg);
    std::fs::write(pkg.join("http_probe.wasm"), b"\0asm not really").unwrap();
    edit_manifest(&pkg, |m| {
        m.lines()
            .filter(|l| !l.starts_with("sha256"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let err = t.hub.install_plugin(&pkg, None).await.unwrap_err();
    assert!(
        err.to_string().contains("is not a valid component"),
        "{err}"
    );
}

#[tokio::test]
async fn archives_install_and_must_be_pinned() {
    let t = common::hub().await;
    let src = common::package("http-probe");
    let archive = t.dir.path().join("http-probe.tar.gz");
    {
        let file = std::fs::File::create(&archive).unwrap();
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::fast(),
        ));
        tar.append_path_with_name(src.join("plugin.toml"), "plugin.toml")
            .unwrap();
        tar.append_path_with_name(src.join("http_probe.wasm"), "http_probe.wasm")
            .unwrap();
        tar.into_inner().unwrap().finish().unwrap();
    }
    let record = t.hub.install_plugin(&archive, None).await.unwrap();
    assert_eq!(record.id, "http-probe");
    assert_eq!(record.digest.len(), 64);

    // The same archive without the pin is refused.
    let unpinned_dir = t.dir.path().join("unpinned");
    copy_package(&src, &unpinned_dir);
    edit_manifest(&unpinned_dir, |m| {
        m.lines()
            .filter(|l| !l.starts_with("sha256"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let unpinned = t.dir.path().join("unpinned.tar");
    {
        let mut tar = tar::Builder::new(std::fs::File::create(&unpinned).unwrap());
        tar.append_dir_all(".", &unpinned_dir).unwrap();
        tar.finish().unwrap();
    }
    let err = t.hub.install_plugin(&unpinned, None).await.unwrap_err();
    assert!(
        matches!(err, HubError::Package(PackageError::Unpinned)),
        "{err}"
    );
}

#[tokio::test]
async fn compiled_artifacts_are_cached_by_digest_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let cache = dir.path().join("cache");
    let t = common::hub_with_options(
        dir,
        &url,
        syncbridge::runtime::EngineOptions {
            cache_dir: Some(cache),
            ..Default::default()
        },
    )
    .await;
    let record = t
        .hub
        .install_plugin(&common::package("http-probe"), None)
        .await
        .unwrap();
    let cached = t
        .dir
        .path()
        .join("cache")
        .join(format!("{}.cwasm", record.digest));
    assert!(cached.exists());
    let modified = std::fs::metadata(&cached).unwrap().modified().unwrap();
    // A second hub on the same directories loads from the cache.
    let runtime = syncbridge::runtime::Runtime::new(syncbridge::runtime::EngineOptions {
        cache_dir: Some(t.dir.path().join("cache")),
        ..Default::default()
    })
    .unwrap();
    let hub2 = syncbridge::hub::Hub::new(
        t.hub.store().clone(),
        std::sync::Arc::new(runtime),
        syncbridge::secrets::MasterKey::generate(),
        t.dir.path().join("plugins"),
    );
    let plugin = hub2.plugin("http-probe").await.unwrap();
    assert_eq!(plugin.digest(), record.digest);
    assert_eq!(
        std::fs::metadata(&cached).unwrap().modified().unwrap(),
        modified
    );
    let description = hub2.runtime().describe(&plugin).await.unwrap();
    assert_eq!(description.name, "HTTP probe");
    // Removing it deletes the record and the component.
    hub2.remove_plugin("http-probe").await.unwrap();
    assert!(!Path::new(&record.component).exists());
}

#[tokio::test]
async fn every_built_package_installs_from_an_uploaded_archive() {
    let t = common::hub().await;
    let target = common::workspace().join("target");
    let mut installed = Vec::new();
    for kind in ["plugins", "test-plugins"] {
        for entry in std::fs::read_dir(target.join(kind)).unwrap() {
            let dir = entry.unwrap().path();
            if !dir.join("plugin.toml").exists() {
                continue;
            }
            let id = dir.file_name().unwrap().to_string_lossy().into_owned();
            let archive = common::package_archive(&id);
            let record = t
                .hub
                .install_plugin_archive(archive.into(), "upload", None)
                .await
                .unwrap_or_else(|e| panic!("{id} does not install from an archive: {e}"));
            assert_eq!(record.id, id);
            installed.push(id);
        }
    }
    installed.sort();
    assert!(
        installed.len() >= 7,
        "every bundled and test plugin: {installed:?}"
    );
}
