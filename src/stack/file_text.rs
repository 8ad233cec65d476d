//! The text of a stack, env or secrets file, read whole only when it is a regular file of a bounded size.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The most a stack file may hold: a real one is a few kilobytes.
pub(crate) const STACK_LIMIT: u64 = 1 << 20;

/// The most an `env_file` or `secrets_file` may hold.
pub(crate) const VARS_LIMIT: u64 = 1 << 20;

/// Why a file's text could not be had.
#[derive(Debug)]
pub(crate) enum FileTextError {
    Io(io::Error),
    /// A directory, FIFO, socket or device: reading one could block or never end.
    NotAFile,
    /// At least `size` bytes, more than `limit`.
    TooLarge {
        size: u64,
        limit: u64,
    },
}

/// Reads `path` as UTF-8 text: its size is checked before a byte is read, and no more than `limit + 1` bytes
/// are ever read (a file that grows while it is read is refused too).
pub(crate) fn read(path: &Path, limit: u64) -> Result<String, FileTextError> {
    let meta = std::fs::metadata(path).map_err(FileTextError::Io)?;
    if !meta.is_file() {
        return Err(FileTextError::NotAFile);
    }
    if meta.len() > limit {
        return Err(FileTextError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    let file = File::open(path).map_err(FileTextError::Io)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(FileTextError::Io)?;
    let size = bytes.len() as u64;
    if size > limit {
        return Err(FileTextError::TooLarge { size, limit });
    }
    String::from_utf8(bytes).map_err(|_| {
        FileTextError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ))
    })
}

/// `1 MiB`, `512 KiB` or `100 bytes`.
pub(crate) fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes % (1 << 10) == 0 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_small_files_and_refuses_large_ones_and_devices() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.yaml");
        std::fs::write(&path, "a: 1\n").unwrap();
        assert_eq!(read(&path, 5).unwrap(), "a: 1\n");
        assert!(matches!(
            read(&path, 4),
            Err(FileTextError::TooLarge { size: 5, limit: 4 })
        ));
        assert!(matches!(read(dir.path(), 5), Err(FileTextError::NotAFile)));
        assert!(matches!(
            read(Path::new("/dev/zero"), 5),
            Err(FileTextError::NotAFile)
        ));
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(matches!(read(&path, 5), Err(FileTextError::Io(_))));
        assert_eq!(human(1 << 20), "1 MiB");
        assert_eq!(human(1536), "1536 bytes");
        assert_eq!(human(2048), "2 KiB");
    }
}
