//! Reading manifests an admin hands to the command line. A pool manifest is a few kilobytes;
//! the YAML parser's cost grows with the square of flow nesting (`[[[[…`), so a file that is
//! too large or nested too deep is refused before it is parsed.

use std::path::Path;

use anyhow::Context as _;

/// Largest manifest read (the API server keeps objects under about 1.5 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// Deepest `[`/`{` nesting accepted; a pool manifest needs a handful.
pub const MAX_FLOW_NESTING: usize = 64;

/// The text of the manifest at `path`, refused when too large or nested too deep.
pub fn read(path: &Path) -> anyhow::Result<String> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    anyhow::ensure!(
        size <= MAX_MANIFEST_BYTES,
        "{} is {size} bytes; a manifest may have at most {MAX_MANIFEST_BYTES}",
        path.display()
    );
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    check_nesting(&text).with_context(|| path.display().to_string())?;
    Ok(text)
}

/// Refuses a manifest text nested deeper than [`MAX_FLOW_NESTING`] before any YAML parser sees it.
pub fn check_nesting(text: &str) -> anyhow::Result<()> {
    let depth = flow_nesting(text);
    anyhow::ensure!(
        depth <= MAX_FLOW_NESTING,
        "the manifest nests [ and {{ {depth} deep; at most {MAX_FLOW_NESTING} are accepted"
    );
    Ok(())
}

/// The deepest nesting of YAML flow collections in `text`, outside quotes and comments.
pub fn flow_nesting(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for line in text.lines() {
        let mut quote: Option<char> = None;
        for c in line.chars() {
            match (quote, c) {
                (Some(open), c) if c == open => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '#') => break,
                (None, '[' | '{') => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                (None, _) => {}
            }
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_counted_outside_quotes_and_comments() {
        assert_eq!(flow_nesting("a: [1, {b: [2]}]\n"), 3);
        assert_eq!(flow_nesting("a: \"[[[[\"  # [[[[\nb: '{{'\n"), 0);
        assert_eq!(flow_nesting("plain: value\n"), 0);
    }

    #[test]
    fn deep_or_large_files_are_refused_before_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("deep.yaml");
        std::fs::write(&deep, "spec: ".to_owned() + &"[".repeat(200_000)).unwrap();
        let error = format!("{:#}", read(&deep).unwrap_err());
        assert!(error.contains("deep.yaml"), "{error}");
        assert!(error.contains("200000 deep"), "{error}");
        let large = dir.path().join("large.yaml");
        std::fs::write(&large, "a".repeat((MAX_MANIFEST_BYTES + 1) as usize)).unwrap();
        assert!(read(&large).unwrap_err().to_string().contains("at most"));
        let fine = dir.path().join("pool.yaml");
        std::fs::write(&fine, "spec: {nodeManager: {image: x}}\n").unwrap();
        assert!(read(&fine).is_ok());
    }
}
