#![no_std]
// The library target exists so that `hostfw` can list this crate as a
// build-dependency (rebuilds when it changes); the programs are in main.rs.
