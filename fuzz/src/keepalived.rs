//! The keepalived.conf importer as `rvsd --import-keepalived` runs it:
//! [`conf::keepalived::import`].
//!
//! The importer reads a file (and what it includes), so the input is written to a file of this
//! process's own first. Properties beyond "no panic": the TOML it prints is TOML, and every
//! diagnostic about the main file names one of its lines.

use std::path::PathBuf;

/// The file each input is written to: one per process, in the system's temporary directory.
fn input_path() -> PathBuf {
    std::env::temp_dir().join(format!("rvs-fuzz-keepalived-{}.conf", std::process::id()))
}

/// Imports `data` as a keepalived.conf (bytes that are not UTF-8 are read as keepalived reads
/// them: the importer takes what the file holds).
pub fn check_conf(data: &[u8]) {
    let path = input_path();
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let Ok(import) = conf::keepalived::import(&path) else {
        panic!("the main file was written but could not be read");
    };
    if let Err(e) = import.toml.parse::<toml::Table>() {
        panic!(
            "the import printed TOML that does not parse: {e}\n{}",
            import.toml
        );
    }
    let main = path.display().to_string();
    let lines = data.split(|&b| b == b'\n').count();
    for d in &import.diagnostics {
        if *d.loc.file == *main {
            assert!(
                (1..=lines).contains(&d.loc.line),
                "line {} of {lines}: {d}",
                d.loc.line
            );
        }
    }
}

/// The importer's own samples (`conf/tests/keepalived/*.conf`: every keyword it converts and
/// every diagnostic it gives).
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    crate::config::files_in("../conf/tests/keepalived", "conf")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_samples_are_seeds_and_pass() {
        let seeds = seeds();
        assert!(seeds.len() >= 8, "{seeds:?}");
        for (_, text) in &seeds {
            check_conf(text);
        }
        // A cut sample, and bytes that are not text.
        check_conf(b"virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2");
        check_conf(&[0xff, 0xfe, b'{', b'}', b'\n']);
    }
}
