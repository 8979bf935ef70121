//! The CI drift check: the CRD YAML committed under `charts/careline/crds/` must be what
//! the Rust types generate. `CARELINE_UPDATE_CRDS=1` rewrites the files instead.

use std::path::PathBuf;

use careline_operator::crd::crds_yaml;

fn crds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../charts/careline/crds")
}

#[test]
fn crd_yaml_in_the_chart_matches_the_rust_types() {
    let dir = crds_dir();
    let update = std::env::var_os("CARELINE_UPDATE_CRDS").is_some_and(|v| v == "1");
    for (file, generated) in crds_yaml() {
        let path = dir.join(file);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &generated).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is not what services/operator/src/crd.rs generates: regenerate it with \
             `CARELINE_UPDATE_CRDS=1 cargo nextest run -p careline-operator crd_yaml` and commit it",
            path.display()
        );
    }
}
