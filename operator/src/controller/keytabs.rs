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
    /// The pool's own keytab has no key for the principal its spec names: the merged file
    /// might (another pool's), and using it would let this pool act as that principal.
    #[error(
        "the keytab Secret of pool {pool} holds no key for {principal} (it holds: {held}); a pool \
         may only authenticate with the keys of its own Secret"
    )]
    NotItsPrincipal {
        /// Pool key.
        pool: String,
        /// The principal of the spec.
        principal: String,
        /// The principals the keytab holds.
        held: String,
    },
    /// The keytab could not be read entry by entry.
    #[error("the keytab of pool {pool} is damaged: {why}")]
    Damaged {
        /// Pool key.
        pool: String,
        /// What was wrong.
        why: String,
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

/// The principals (`name/instance@REALM`) a keytab holds keys for, in file order, once each.
/// The format: a 2-byte version, then entries each led by a signed 32-bit length (negative:
/// a hole to skip): component count (u16), realm, components (u16-counted strings), name type,
/// timestamp, key version and key, all big-endian.
pub fn principals(keytab: &[u8]) -> Result<Vec<String>, String> {
    let mut found: Vec<String> = Vec::new();
    let mut rest = keytab.get(2..).ok_or("shorter than its header")?;
    while rest.len() >= 4 {
        let (length, after) = rest.split_at(4);
        let length = i32::from_be_bytes([length[0], length[1], length[2], length[3]]);
        let size = usize::try_from(length.unsigned_abs()).map_err(|e| e.to_string())?;
        let entry = after
            .get(..size)
            .ok_or_else(|| format!("an entry of {size} bytes runs past the end"))?;
        rest = &after[size..];
        if length <= 0 {
            continue;
        }
        let principal = entry_principal(entry)?;
        if !found.contains(&principal) {
            found.push(principal);
        }
    }
    if !rest.is_empty() {
        return Err(format!("{} stray bytes at the end", rest.len()));
    }
    Ok(found)
}

fn entry_principal(entry: &[u8]) -> Result<String, String> {
    let mut cursor = entry;
    let mut take = |n: usize| -> Result<&[u8], String> {
        if cursor.len() < n {
            return Err("an entry ends inside its principal".to_owned());
        }
        let (head, tail) = cursor.split_at(n);
        cursor = tail;
        Ok(head)
    };
    let count_of = |bytes: &[u8]| usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
    let components = count_of(take(2)?);
    let realm_length = count_of(take(2)?);
    let realm = String::from_utf8_lossy(take(realm_length)?).into_owned();
    let mut names = Vec::with_capacity(components);
    for _ in 0..components {
        let length = count_of(take(2)?);
        names.push(String::from_utf8_lossy(take(length)?).into_owned());
    }
    Ok(format!("{}@{realm}", names.join("/")))
}

impl KeytabStore {
    /// A store writing to `path` (`None`: Kerberos pools are refused with a clear error).
    pub fn new(path: Option<PathBuf>) -> KeytabStore {
        KeytabStore {
            path,
            by_pool: BTreeMap::new(),
        }
    }

    /// Sets a pool's keytab, after checking that it holds a key of `principal` (the pool's own),
    /// and rewrites the file when it changed.
    pub fn set(&mut self, pool: &str, keytab: Vec<u8>, principal: &str) -> Result<(), KeytabError> {
        let path = self.path.clone().ok_or(KeytabError::NotConfigured)?;
        if keytab.get(..2) != Some(&KEYTAB_HEADER[..]) {
            return Err(KeytabError::NotAKeytab {
                pool: pool.to_owned(),
            });
        }
        let held = principals(&keytab).map_err(|why| KeytabError::Damaged {
            pool: pool.to_owned(),
            why,
        })?;
        if !held.iter().any(|p| p == principal) {
            return Err(KeytabError::NotItsPrincipal {
                pool: pool.to_owned(),
                principal: principal.to_owned(),
                held: held.join(", "),
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

    /// One keytab entry for `name@realm` (a made-up key), with its length prefix.
    fn entry(names: &[&str], realm: &str) -> Vec<u8> {
        let counted = |text: &str| {
            let mut bytes = (text.len() as u16).to_be_bytes().to_vec();
            bytes.extend_from_slice(text.as_bytes());
            bytes
        };
        let mut body = (names.len() as u16).to_be_bytes().to_vec();
        body.extend(counted(realm));
        for name in names {
            body.extend(counted(name));
        }
        body.extend(1u32.to_be_bytes()); // name type
        body.extend(0u32.to_be_bytes()); // timestamp
        body.push(1); // key version
        body.extend(18u16.to_be_bytes()); // aes256
        body.extend(counted("0123456789abcdef0123456789abcdef"));
        let mut entry = (body.len() as i32).to_be_bytes().to_vec();
        entry.extend(body);
        entry
    }

    fn keytab(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = KEYTAB_HEADER.to_vec();
        entries.iter().for_each(|e| bytes.extend(e));
        bytes
    }

    #[test]
    fn principals_are_read_entry_by_entry_skipping_holes() {
        let hole = {
            let mut bytes = (-6i32).to_be_bytes().to_vec();
            bytes.extend([0; 6]);
            bytes
        };
        let bytes = keytab(&[
            entry(&["elastic-yarn"], "EXAMPLE.COM"),
            hole,
            entry(&["elastic-yarn"], "EXAMPLE.COM"),
            entry(&["HTTP", "rm1.example.com"], "EXAMPLE.COM"),
        ]);
        assert_eq!(
            principals(&bytes).unwrap(),
            [
                "elastic-yarn@EXAMPLE.COM",
                "HTTP/rm1.example.com@EXAMPLE.COM"
            ]
        );
        let mut cut = bytes.clone();
        cut.truncate(bytes.len() - 3);
        assert!(principals(&cut).is_err());
    }

    #[test]
    fn store_refuses_garbage_and_writes_the_merge() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.keytab");
        let mut store = KeytabStore::new(Some(path.clone()));
        assert!(matches!(
            store.set("yarn/a", b"not a keytab".to_vec(), "a@R"),
            Err(KeytabError::NotAKeytab { .. })
        ));
        let a = entry(&["a"], "R");
        let b = entry(&["b"], "R");
        store
            .set("yarn/a", keytab(std::slice::from_ref(&a)), "a@R")
            .unwrap();
        store
            .set("yarn/b", keytab(std::slice::from_ref(&b)), "b@R")
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), keytab(&[a, b]));
        assert_eq!(
            KeytabStore::new(None).set("x", vec![0x05, 0x02], "x@R"),
            Err(KeytabError::NotConfigured)
        );
    }

    #[test]
    fn a_pool_may_not_name_a_principal_of_another_pools_keytab() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = KeytabStore::new(Some(dir.path().join("client.keytab")));
        store
            .set(
                "team-a/pool",
                keytab(&[entry(&["team-a"], "R")]),
                "team-a@R",
            )
            .unwrap();
        // team-b's Secret holds its own key, but its spec names team-a's principal: the merged
        // file would have served it.
        let error = store
            .set(
                "team-b/pool",
                keytab(&[entry(&["team-b"], "R")]),
                "team-a@R",
            )
            .unwrap_err();
        assert!(
            matches!(error, KeytabError::NotItsPrincipal { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("holds: team-b@R"), "{error}");
    }
}
