//! Reading a strict TOML configuration file (unknown keys are the caller's
//! `deny_unknown_fields` to refuse).

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("cannot read config {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has unknown keys or bad values.
    #[error("invalid config {}: {detail}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        detail: String,
    },
}

/// Reads and parses `path`.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigFileError::Parse {
        path: path.to_owned(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Cfg {
        name: String,
    }

    #[test]
    fn reads_and_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "name = \"x\"\n").unwrap();
        assert_eq!(read_toml::<Cfg>(&p).unwrap().name, "x");
        std::fs::write(&p, "nmae = \"x\"\n").unwrap();
        assert!(matches!(
            read_toml::<Cfg>(&p),
            Err(ConfigFileError::Parse { .. })
        ));
        assert!(matches!(
            read_toml::<Cfg>(&dir.path().join("missing")),
            Err(ConfigFileError::Read { .. })
        ));
    }
}
