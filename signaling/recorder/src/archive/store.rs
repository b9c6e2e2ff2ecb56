//! Where the archive's blobs live: a small [`Store`] trait (named blobs, atomic put) and its
//! local-directory implementation. Every blob the archive puts is ciphertext except the chain,
//! which is signed plaintext.
//!
//! An S3 store is not built (no S3 server is reachable here): it would map `put` to a
//! `PutObject` (atomic by nature), `list` to `ListObjectsV2`, and `lock` + the chain's
//! read-modify-put to a conditional `PutObject` (`If-Match` on the chain's ETag), with the bucket
//! under Object Lock so a deleted session needs the retention sweep's credentials.

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// Named blobs. Names are `/`-separated paths of `[A-Za-z0-9._-]` components (no `..`, no
/// leading dot), e.g. `sessions/<id>/manifest.json.age`.
pub trait Store: Send + Sync {
    /// Writes `data` under `name`, atomically: a reader sees the old blob or the whole new one,
    /// never a part (and a crash leaves no half blob under the name).
    fn put(&self, name: &str, data: &[u8]) -> io::Result<()>;
    /// Reads the blob `name` (`NotFound` when there is none).
    fn get(&self, name: &str) -> io::Result<Vec<u8>>;
    /// Every blob name under the folder `prefix` (recursively), sorted.
    fn list(&self, prefix: &str) -> io::Result<Vec<String>>;
    /// Deletes the blob `name` (`NotFound` when there is none).
    fn delete(&self, name: &str) -> io::Result<()>;
    /// Takes the store's exclusive lock named `name` (across processes), held until the guard
    /// is dropped: the chain's read-modify-put runs under it.
    fn lock(&self, name: &str) -> io::Result<StoreLock>;
}

/// An exclusive lock of a [`Store`], released when dropped.
pub struct StoreLock {
    _held: Box<dyn Send>,
}

impl std::fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreLock")
    }
}

/// A [`Store`] in a local directory (created 0700; blobs 0600).
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

const TEMP_MARK: &str = ".tmp-";

impl LocalStore {
    /// Opens (creating it if missing) the store in `root`.
    pub fn open(root: &Path) -> io::Result<Self> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// The directory the store keeps its blobs in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, name: &str) -> io::Result<PathBuf> {
        check_name(name)?;
        Ok(self.root.join(name))
    }
}

/// Refuses a name that could leave the store's folder or collide with a temporary file.
fn check_name(name: &str) -> io::Result<()> {
    let valid = !name.is_empty()
        && name.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    if valid {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid blob name {name:?}"),
        ))
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

impl Store for LocalStore {
    fn put(&self, name: &str, data: &[u8]) -> io::Result<()> {
        let path = self.path(name)?;
        // A checked name has at least one component, so the path has a parent and a file name.
        let dir = path.parent().expect("a blob path has a parent");
        let file_name = path.file_name().expect("a blob path has a file name");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let temp = dir.join(format!(
            ".{}{TEMP_MARK}{:016x}",
            file_name.to_string_lossy(),
            rand::random::<u64>()
        ));
        let written = (|| {
            let mut out = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)?;
            out.write_all(data)?;
            out.sync_all()?;
            fs::rename(&temp, &path)?;
            sync_dir(dir)
        })();
        if written.is_err() {
            // The temporary file may or may not exist; the error that matters is the write's.
            let _ = fs::remove_file(&temp);
        }
        written
    }

    fn get(&self, name: &str) -> io::Result<Vec<u8>> {
        fs::read(self.path(name)?)
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let prefix = prefix.trim_end_matches('/');
        let start = if prefix.is_empty() {
            self.root.clone()
        } else {
            self.path(prefix)?
        };
        let mut names = Vec::new();
        let mut stack = vec![(start, prefix.to_owned())];
        while let Some((dir, name)) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let file_name = entry.file_name().to_string_lossy().into_owned();
                // Temporary files of puts in flight, and the lock files.
                if file_name.starts_with('.') {
                    continue;
                }
                let child = if name.is_empty() {
                    file_name
                } else {
                    format!("{name}/{file_name}")
                };
                if entry.file_type()?.is_dir() {
                    stack.push((entry.path(), child));
                } else {
                    names.push(child);
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn delete(&self, name: &str) -> io::Result<()> {
        let path = self.path(name)?;
        fs::remove_file(&path)?;
        // Remove the folders the blob leaves empty (a session's folder after its last file).
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == self.root || fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    }

    fn lock(&self, name: &str) -> io::Result<StoreLock> {
        check_name(name)?;
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(self.root.join(format!(".{name}.lock")))?;
        file.lock()?;
        // Closing the file (dropping the guard) releases the lock.
        Ok(StoreLock {
            _held: Box::new(file),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_leave_the_store_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        for name in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            ".hidden",
            "a/.x.tmp-1",
            "a b",
            "a/",
        ] {
            assert_eq!(
                store.put(name, b"x").unwrap_err().kind(),
                io::ErrorKind::InvalidInput,
                "{name:?}"
            );
        }
        assert!(store.list("").unwrap().is_empty());
    }

    #[test]
    fn put_replaces_the_whole_blob_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        store.put("sessions/s1/a.age", b"first").unwrap();
        store.put("sessions/s1/a.age", b"second").unwrap();
        assert_eq!(store.get("sessions/s1/a.age").unwrap(), b"second");
        let on_disk: Vec<_> = fs::read_dir(dir.path().join("sessions/s1"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(on_disk, ["a.age"]);
        // A temporary file of a put in flight is not listed.
        fs::write(dir.path().join("sessions/s1/.b.age.tmp-0"), b"half").unwrap();
        assert_eq!(store.list("sessions").unwrap(), ["sessions/s1/a.age"]);
        // Deleting the last blob of a folder removes the folder.
        fs::remove_file(dir.path().join("sessions/s1/.b.age.tmp-0")).unwrap();
        store.delete("sessions/s1/a.age").unwrap();
        assert!(!dir.path().join("sessions").exists());
    }
}
