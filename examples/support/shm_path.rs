//! Where a POSIX shared-memory name lives in the file system.

/// The file `/dev/shm/<name>` that segment `name` (`/name`) is.
pub(crate) fn shm_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new("/dev/shm").join(name.trim_start_matches('/'))
}
