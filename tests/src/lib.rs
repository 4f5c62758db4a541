//! Cross-part tests of elastic-yarn live in `tests/tests/`; this library holds what they share.

use std::path::PathBuf;

/// Root of the workspace, for tests that read committed files (docs, chart).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// A binary of another workspace crate, built by the same `cargo test --workspace` run (its own
/// integration tests need it). Panics with the command to run when it is missing.
pub fn workspace_binary(name: &str) -> PathBuf {
    let profile_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.parent()
                .and_then(|deps| deps.parent())
                .map(PathBuf::from)
        })
        .unwrap_or_default();
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo test --workspace` (or `cargo build --workspace`) first",
        path.display()
    );
    path
}
