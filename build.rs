//! Link settings for the server binary.
//!
//! `-z pack-relative-relocs` (DT_RELR): a position-independent executable carries one
//! relocation per pointer in its constant data, which the loader reads, all of it, at every
//! start. As 24-byte RELA entries they took megabytes of the binary, each page of it read
//! and kept resident (counted in the process's RSS); packed as RELR bitmaps they take a few
//! KiB. The binary stays position-independent (address-space randomisation is unchanged).
//! Needs glibc 2.36 or later at run time and GNU ld 2.38 or lld 15 to link; built and run
//! here with GNU ld 2.40 and glibc 2.36 (Debian bookworm, the image's builder and runtime).
//! Measured in docs/benchmarks.md ("Fourth pass").

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // The linker of x86_64 Linux builds (.cargo/config.toml) and the list of functions it places
    // first: a change to either links the binary again.
    println!("cargo:rerun-if-changed=scripts/link-hot-first");
    println!("cargo:rerun-if-changed=scripts/code-order.txt");
    // Its switch back to the shared glibc.
    println!("cargo:rerun-if-env-changed=FOCUSFLOW_DYNAMIC_LIBC");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
