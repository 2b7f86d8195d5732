//! Reading pact files from disk, with errors that name the file.

use std::path::{Path, PathBuf};

use crate::{Pact, PactError};

/// A pact file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file or folder could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not a pact faultline reads.
    #[error("{path}: {source}")]
    Pact { path: PathBuf, source: PactError },
    /// The folder holds no pact.
    #[error("{0}: no *.json pact files")]
    Empty(PathBuf),
}

/// Reads one pact file.
pub fn read_pact(path: &Path) -> Result<Pact, FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Pact::from_json_str(&text).map_err(|source| FileError::Pact {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads every `*.json` in `dir` (name order), or the single file `dir`; the first bad file
/// is the error.
pub fn read_pacts(dir: &Path) -> Result<Vec<(PathBuf, Pact)>, FileError> {
    if dir.is_file() {
        return Ok(vec![(dir.to_path_buf(), read_pact(dir)?)]);
    }
    let io = |source| FileError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "json") && p.is_file());
    paths.sort();
    if paths.is_empty() {
        return Err(FileError::Empty(dir.to_path_buf()));
    }
    paths
        .into_iter()
        .map(|p| read_pact(&p).map(|pact| (p, pact)))
        .collect()
}
