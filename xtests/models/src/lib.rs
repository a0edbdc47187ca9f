//! Nothing: this package holds the property tests of `ipc-primitives`'
//! rings against simple models (`tests/*_model.rs`), apart from the crate so
//! that the crate's examples build without proptest.
