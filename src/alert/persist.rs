//! The router's state on disk: silences, the notification log and the active alerts, each a
//! JSON snapshot in `<data-dir>/router/`, replaced atomically (write, fsync, rename, fsync
//! the directory) so a crash leaves either the old or the new file, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("writing {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is damaged: {message}")]
    Damaged { path: String, message: String },
}

#[derive(Clone, Debug)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    pub fn new(data_dir: &Path) -> StateDir {
        StateDir { dir: data_dir.join("router") }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn write<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<(), PersistError> {
        let path = self.path(name);
        let err = |source| PersistError::Write { path: path.display().to_string(), source };
        std::fs::create_dir_all(&self.dir).map_err(err)?;
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let bytes = serde_json::to_vec(value).map_err(|e| err(std::io::Error::other(e)))?;
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(&bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(err)?;
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// `Ok(None)` when the file does not exist yet.
    pub fn read<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, PersistError> {
        let path = self.path(name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(PersistError::Read { path: path.display().to_string(), source }),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| PersistError::Damaged { path: path.display().to_string(), message: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::new(dir.path());
        assert_eq!(s.read::<Vec<u32>>("x.json").unwrap(), None);
        s.write("x.json", &vec![1u32, 2]).unwrap();
        assert_eq!(s.read::<Vec<u32>>("x.json").unwrap(), Some(vec![1, 2]));
        std::fs::write(s.path("x.json"), b"[1,").unwrap();
        assert!(matches!(s.read::<Vec<u32>>("x.json"), Err(PersistError::Damaged { .. })));
    }
}
