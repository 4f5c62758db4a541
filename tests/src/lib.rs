//! Cross-part tests of elastic-yarn live in `tests/tests/`; this library holds what they share.

use std::path::PathBuf;

/// Root of the workspace, for tests that read committed files (docs, chart).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}
