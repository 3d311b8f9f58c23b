//! The committed header is exactly what cbindgen generates from src/ffi, and its version
//! macros match Cargo.toml. `make header` rewrites it.

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generate() -> String {
    let config = cbindgen::Config::from_file(root().join("cbindgen.toml")).expect("cbindgen.toml");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root())
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut out);
    String::from_utf8(out).expect("utf-8 header")
}

#[test]
fn header_is_up_to_date() {
    let path = root().join("include/ohreq.h");
    let fresh = generate();
    if std::env::var_os("OHREQ_WRITE_HEADER").is_some() {
        std::fs::write(&path, &fresh).expect("write include/ohreq.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/ohreq.h is stale: run `make header`"
    );
}

#[test]
fn header_version_matches_cargo() {
    let h = std::fs::read_to_string(root().join("include/ohreq.h")).expect("header");
    let mut want = env!("CARGO_PKG_VERSION").split('.');
    for part in ["MAJOR", "MINOR", "PATCH"] {
        let line = format!("#define OHREQ_VERSION_{part} {}", want.next().unwrap());
        assert!(h.contains(&line), "header lacks `{line}`");
    }
}
