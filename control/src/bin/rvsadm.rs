//! `rvsadm`: ipvsadm's command line for rvsd. See [`control::admin`].
#![forbid(unsafe_code)]

use std::io;

use control::admin::{self, Streams};
use control::names::Names;

fn main() {
    let mut argv = std::env::args_os().map(|a| a.to_string_lossy().into_owned());
    let program = argv.next().unwrap_or_else(|| "rvsadm".to_string());
    let args: Vec<String> = argv.collect();
    let names = Names::system();
    let (stdin, stdout, stderr) = (io::stdin(), io::stdout(), io::stderr());
    let code = admin::run(
        &program,
        &args,
        &names,
        &mut Streams {
            stdin: &mut stdin.lock(),
            out: &mut stdout.lock(),
            err: &mut stderr.lock(),
        },
    );
    std::process::exit(code);
}
