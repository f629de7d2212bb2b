//! Instruction counts with `valgrind --tool=callgrind`: the total of a run, and its exclusive
//! cost per `file:function` (from `callgrind_annotate`), so that two runs of different
//! lengths can be subtracted function by function.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// One callgrind run.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// Instructions executed (Ir), the whole program.
    pub total: u64,
    /// Exclusive Ir per `file:function` (inlined code is charged to its own file under the
    /// function it was inlined into).
    pub functions: HashMap<String, u64>,
}

/// One workload profiled at two lengths.
#[derive(Debug, Clone, Default)]
pub struct Pair {
    pub short: Profile,
    pub long: Profile,
}

impl Pair {
    fn growth(&self, function: &str) -> f64 {
        let get = |p: &Profile| p.functions.get(function).copied().unwrap_or(0) as f64;
        get(&self.long) - get(&self.short)
    }
}

/// What one of the `n` extra iterations of `work`'s long run costs beyond the same iterations
/// of `baseline`: `((work.long - work.short) - (baseline.long - baseline.short)) / n`, in
/// total and per `file:function` (largest first; below 0.05 left out).
pub fn per_iteration(work: &Pair, baseline: &Pair, n: u64) -> (f64, Vec<(String, f64)>) {
    let n = n as f64;
    let total = ((work.long.total as f64 - work.short.total as f64)
        - (baseline.long.total as f64 - baseline.short.total as f64))
        / n;
    let mut names: Vec<&String> = work.long.functions.keys().collect();
    names.extend(baseline.long.functions.keys());
    names.sort();
    names.dedup();
    let mut functions: Vec<(String, f64)> = names
        .into_iter()
        .map(|f| (f.clone(), (work.growth(f) - baseline.growth(f)) / n))
        .filter(|(_, d)| d.abs() >= 0.05)
        .collect();
    functions.sort_by(|a, b| b.1.total_cmp(&a.1));
    (total, functions)
}

/// Costs per `file:function` summed by function: each function's own code and everything
/// inlined into it, whatever its source file.
pub fn by_function(costs: &[(String, f64)]) -> Vec<(String, f64)> {
    let mut sums: HashMap<&str, f64> = HashMap::new();
    for (name, cost) in costs {
        let function = name.split_once(':').map_or(name.as_str(), |(_, f)| f);
        *sums.entry(function).or_insert(0.0) += cost;
    }
    let mut out: Vec<(String, f64)> = sums.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// The command running `program` under callgrind, writing its profile to `out`. With
/// `follow_exec`, the program `program` executes (e.g. through `stdbuf`) is the one profiled.
pub fn command(program: impl AsRef<std::ffi::OsStr>, out: &Path, follow_exec: bool) -> Command {
    let mut cmd = Command::new("valgrind");
    cmd.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()));
    if follow_exec {
        cmd.arg("--trace-children=yes");
    }
    cmd.arg(program);
    cmd
}

/// Runs `program args` under callgrind to its end, writing its profile to `out`.
pub fn run(program: &Path, args: &[String], out: &Path) -> Result<Profile, String> {
    let result = command(program, out, false)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    if !result.status.success() {
        return Err(format!(
            "callgrind {} {}: {}\n{}",
            program.display(),
            args.join(" "),
            result.status,
            String::from_utf8_lossy(&result.stderr)
        ));
    }
    let total = total(out)?;
    let annotated = Command::new("callgrind_annotate")
        .args(["--inclusive=no", "--threshold=100", "--auto=no"])
        .arg(out)
        .output()
        .map_err(|e| format!("cannot run callgrind_annotate: {e}"))?;
    let functions = parse_annotate(&String::from_utf8_lossy(&annotated.stdout));
    Ok(Profile { total, functions })
}

/// The instructions a finished callgrind run wrote to `out` (its summary line).
pub fn total(out: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(out).map_err(|e| format!("{}: {e}", out.display()))?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("{}: no summary line", out.display()))
}

/// `12,345 (12.34%)  path/file.rs:crate::function [/path/object]` lines, summed by
/// shortened `file:function`.
fn parse_annotate(text: &str) -> HashMap<String, u64> {
    let mut functions = HashMap::new();
    for line in text.lines() {
        let line = line.trim_start();
        let Some((count, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(count) = count.replace(',', "").parse::<u64>() else {
            continue;
        };
        let Some((_, name)) = rest.split_once(")  ") else {
            continue;
        };
        if name.contains("PROGRAM TOTALS") {
            continue;
        }
        *functions.entry(shorten(name)).or_insert(0) += count;
    }
    functions
}

/// Drops the object file, the directories of the source file and Rust's symbol hashes.
fn shorten(name: &str) -> String {
    let name = match name.rfind(" [") {
        Some(i) if name.ends_with(']') => &name[..i],
        _ => name,
    };
    let (file, function) = name.split_once(':').unwrap_or(("???", name));
    let file = file.rsplit('/').next().unwrap_or(file);
    let function = match function.rfind("::h") {
        Some(i) if function[i + 3..].chars().all(|c| c.is_ascii_hexdigit()) => &function[..i],
        _ => function,
    };
    format!("{file}:{function}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_callgrind_annotate_lines() {
        let text = "\
126,651 (100.0%)  PROGRAM TOTALS
21,172 (16.72%)  ./elf/./elf/dl-lookup.c:do_lookup_x [/usr/lib/ld.so]
 8,262 ( 6.52%)  /work/main/dataplane/src/conn/table.rs:fastpath::forward::l4::h0123456789abcdef [/x/pipeline_ipp]
   100 ( 0.01%)  /work/main/dataplane/src/conn/table.rs:fastpath::forward::l4 [/x/pipeline_ipp]
";
        let f = parse_annotate(text);
        assert_eq!(f.len(), 2);
        assert_eq!(f["dl-lookup.c:do_lookup_x"], 21_172);
        assert_eq!(f["table.rs:fastpath::forward::l4"], 8_362);
        let profile = |total, functions: &[(&str, u64)]| Profile {
            total,
            functions: functions.iter().map(|&(k, v)| (k.to_string(), v)).collect(),
        };
        let work = Pair {
            short: profile(100, &[("a", 50), ("copy", 50)]),
            long: profile(1100, &[("a", 850), ("copy", 250)]),
        };
        let baseline = Pair {
            short: profile(60, &[("copy", 50)]),
            long: profile(260, &[("copy", 250)]),
        };
        let (total, functions) = per_iteration(&work, &baseline, 100);
        assert_eq!(total, 8.0);
        assert_eq!(functions, vec![("a".to_string(), 8.0)]);
        let costs = [
            ("table.rs:l4".to_string(), 2.0),
            ("forward.rs:l4".to_string(), 3.0),
            ("nat.rs:rewrite".to_string(), 4.0),
        ];
        assert_eq!(
            by_function(&costs),
            vec![("l4".to_string(), 5.0), ("rewrite".to_string(), 4.0)]
        );
    }
}
