//! `careline key`: a new key hashes to the sha256 it printed; a weak key is
//! refused with the reason and no hash.

use std::io::Write as _;
use std::process::Stdio;

use crate::cli::{careline, run, text};

fn hash(key: &str) -> std::process::Output {
    let mut child = careline()
        .args(["key", "hash"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("careline key hash runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{key}\n").as_bytes())
        .unwrap();
    child.wait_with_output().expect("it ends")
}

#[tokio::test]
async fn a_new_key_hashes_to_the_sha256_it_printed_and_a_weak_key_is_refused() {
    let output = run(&["key", "new"]).await;
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} in {stdout}"))
            .trim()
            .to_string()
    };
    let (key, sha256) = (field("key:"), field("sha256:"));
    assert_eq!(key.len(), 40);
    assert_eq!(sha256.len(), 64);

    let hashed = tokio::task::spawn_blocking(move || hash(&key))
        .await
        .unwrap();
    assert!(hashed.status.success(), "{:?}", text(&hashed));
    assert_eq!(text(&hashed).0.trim(), sha256);

    let weak = tokio::task::spawn_blocking(|| hash("demo-health-key-0000000000000000"))
        .await
        .unwrap();
    let (stdout, stderr) = text(&weak);
    assert!(!weak.status.success());
    assert!(stdout.is_empty(), "no hash for a weak key: {stdout}");
    assert!(
        stderr.contains("weak key") && stderr.contains("repeats"),
        "{stderr}"
    );
}
