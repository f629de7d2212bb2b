//! The TOML loader as `rvsd --config` and `--check-config` run it: [`conf::Config::parse`].
//!
//! Properties beyond "no panic": a rejected file names at least one problem, and every problem
//! points at a line of the file (`file:line: field: message`).

use std::path::PathBuf;

/// Parses `data` as a config file (input that is not UTF-8 never reaches the parser:
/// `Config::load` reads a `String`).
pub fn check_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Err(e) = conf::Config::parse(text, "f.toml") else {
        return;
    };
    let lines = text.matches('\n').count() + 1;
    assert!(!e.problems().is_empty(), "rejected without a problem");
    for p in e.problems() {
        match p.line {
            Some(line) => assert!((1..=lines).contains(&line), "line {line} of {lines}: {e}"),
            None => panic!("no line: {e}"),
        }
    }
    assert!(e.to_string().starts_with("f.toml:"), "{e}");
}

/// The shipped examples (`conf/examples/*.toml`), every section and key in use.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    files_in("../conf/examples", "toml")
}

/// The files of `dir` (relative to the fuzz crate) ending in `.ext`, as (stem, bytes), sorted.
pub(crate) fn files_in(dir: &str, ext: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == ext))
                .filter_map(|p| {
                    let name = p.file_stem()?.to_string_lossy().into_owned();
                    Some((name, std::fs::read(&p).ok()?))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_examples_are_seeds_and_parse() {
        let seeds = seeds();
        assert!(seeds.len() >= 5, "{seeds:?}");
        for (name, text) in &seeds {
            let text = std::str::from_utf8(text).expect("utf-8");
            if let Err(e) = conf::Config::parse(text, "f.toml") {
                panic!("{name}: {e}");
            }
            check_text(text.as_bytes());
        }
    }

    #[test]
    fn rejected_files_point_at_their_lines() {
        for text in [
            "[eal]\nargs = [\n",
            "[[service]]\nvip = 1\n",
            "x",
            "\n\n[dataplane]\nworkers = [-1]\n",
        ] {
            check_text(text.as_bytes());
        }
    }
}
