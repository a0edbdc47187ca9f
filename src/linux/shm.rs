//! Shared memory: POSIX shm and memfd segments, mapped `MAP_SHARED`.
