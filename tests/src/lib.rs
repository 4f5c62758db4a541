//! Cross-part tests of elastic-yarn live in `tests/tests/`; this library holds what they share.

pub use testkit::{workspace_binary, workspace_root};
