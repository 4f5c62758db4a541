//! One client keytab for every Kerberos pool. GSSAPI reads the keytab named by
//! `KRB5_CLIENT_KTNAME` (set in the operator's Deployment); with a `DIR:` ticket cache
//! (`KRB5CCNAME`) one process holds tickets of several principals (docs/decisions.md). Each pool's
//! keytab Secret is merged into that file.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// MIT keytab format version 0x502, the first two bytes of every keytab file.
const KEYTAB_HEADER: [u8; 2] = [0x05, 0x02];

/// Why a keytab cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeytabError {
    /// The operator was not started with a client keytab path.
    #[error(
        "Kerberos pools need KRB5_CLIENT_KTNAME (a writable file) and KRB5CCNAME=DIR:<dir> in \
         the operator's environment"
    )]
    NotConfigured,
    /// The Secret's content is not an MIT keytab.
    #[error("the keytab of pool {pool} is not an MIT keytab (version 0x502)")]
    NotAKeytab {
        /// Pool key.
        pool: String,
    },
    /// Writing the merged file failed.
    #[error("cannot write the client keytab {path}: {message}")]
    Write {
        /// File.
        path: String,
        /// Cause.
        message: String,
    },
}

/// The merged client keytab.
#[derive(Debug, Default)]
pub struct KeytabStore {
    path: Option<PathBuf>,
    by_pool: BTreeMap<String, Vec<u8>>,
}

/// Every entry of every keytab, after one header.
pub fn merge<'a>(keytabs: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut merged = KEYTAB_HEADER.to_vec();
    for keytab in keytabs {
        merged.extend_from_slice(keytab.get(2..).unwrap_or_default());
    }
    merged
}

impl KeytabStore {
    /// A store writing to `path` (`None`: Kerberos pools are refused with a clear error).
    pub fn new(path: Option<PathBuf>) -> KeytabStore {
        KeytabStore {
            path,
            by_pool: BTreeMap::new(),
        }
    }

    /// Sets a pool's keytab and rewrites the file when it changed.
    pub fn set(&mut self, pool: &str, keytab: Vec<u8>) -> Result<(), KeytabError> {
        let path = self.path.clone().ok_or(KeytabError::NotConfigured)?;
        if keytab.get(..2) != Some(&KEYTAB_HEADER[..]) {
            return Err(KeytabError::NotAKeytab {
                pool: pool.to_owned(),
            });
        }
        if self.by_pool.get(pool) == Some(&keytab) {
            return Ok(());
        }
        self.by_pool.insert(pool.to_owned(), keytab);
        let merged = merge(self.by_pool.values().map(Vec::as_slice));
        // Written aside and renamed, so that GSSAPI never reads half a file.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, merged)
            .and_then(|()| std::fs::rename(&partial, &path))
            .map_err(|err| KeytabError::Write {
                path: path.display().to_string(),
                message: err.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_keytab_has_one_header_and_every_entry() {
        let a = [0x05, 0x02, 1, 2, 3];
        let b = [0x05, 0x02, 4, 5];
        assert_eq!(merge([&a[..], &b[..]]), [0x05, 0x02, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn store_refuses_garbage_and_writes_the_merge() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.keytab");
        let mut store = KeytabStore::new(Some(path.clone()));
        assert!(matches!(
            store.set("yarn/a", b"not a keytab".to_vec()),
            Err(KeytabError::NotAKeytab { .. })
        ));
        store.set("yarn/a", vec![0x05, 0x02, 9]).unwrap();
        store.set("yarn/b", vec![0x05, 0x02, 8]).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), [0x05, 0x02, 9, 8]);
        assert_eq!(
            KeytabStore::new(None).set("x", vec![0x05, 0x02]),
            Err(KeytabError::NotConfigured)
        );
    }
}
