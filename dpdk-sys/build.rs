//! Generates the DPDK bindings and compiles the C shim.
//!
//! DPDK is found with pkg-config (`libdpdk`), so any DPDK the system provides is used (Debian 12
//! ships 22.11). With the default `link-static` feature the PMDs rvs relies on are linked
//! whole-archive from DPDK's static archives: the binary then carries a fixed driver set and never
//! depends on the plugin directory (`RTE_EAL_PMD_PATH`). Without it, DPDK is linked as shared
//! libraries and EAL loads every installed PMD plugin at start-up.

use std::env;
use std::path::{Path, PathBuf};
use std::process::exit;

/// Drivers and buses linked whole-archive (their `RTE_INIT` constructors register them).
/// Virtual devices for tests and benchmarks first, then the PCI bus and common NIC drivers for
/// bare metal. Missing archives are skipped with a warning so that a DPDK built without a
/// driver still links.
const WHOLE_ARCHIVE: &[&str] = &[
    "rte_bus_vdev",
    "rte_bus_pci",
    "rte_mempool_ring",
    "rte_net_null",
    "rte_net_pcap",
    "rte_net_ring",
    "rte_net_tap",
    "rte_net_af_packet",
    "rte_net_ixgbe",
    "rte_net_i40e",
    "rte_common_iavf",
    "rte_net_iavf",
    "rte_net_ice",
    "rte_net_e1000",
    "rte_net_virtio",
    "rte_net_vmxnet3",
];

/// mlx5 needs rdma-core's libibverbs and libmlx5 at link and run time, so it is linked only when
/// pkg-config finds them (Debian: `libibverbs-dev`).
const WHOLE_ARCHIVE_MLX5: &[&str] = &["rte_bus_auxiliary", "rte_common_mlx5", "rte_net_mlx5"];

/// Bitmask constants that must be u64 whatever value cexpr infers (some come out as i64 or u32).
const U64_MACRO_PREFIXES: &[&str] = &[
    "RTE_ETH_RSS_",
    "RTE_ETH_RX_OFFLOAD_",
    "RTE_ETH_TX_OFFLOAD_",
    "RTE_MBUF_F_",
];

#[derive(Debug)]
struct U64Macros;

impl bindgen::callbacks::ParseCallbacks for U64Macros {
    fn int_macro(&self, name: &str, _value: i64) -> Option<bindgen::callbacks::IntKind> {
        U64_MACRO_PREFIXES
            .iter()
            .any(|p| name.starts_with(p))
            .then_some(bindgen::callbacks::IntKind::U64)
    }
}

fn fail(sentence: &str) -> ! {
    eprintln!("error: {sentence}");
    println!("cargo:warning={sentence}");
    exit(1);
}

fn main() {
    println!("cargo:rerun-if-changed=shim/shim.c");
    println!("cargo:rerun-if-changed=shim/shim.h");
    println!("cargo:rerun-if-env-changed=RVS_EXTRA_PMDS");

    let dpdk = pkg_config::Config::new()
        .cargo_metadata(false)
        .probe("libdpdk")
        .unwrap_or_else(|_| {
            fail("DPDK was not found by pkg-config (libdpdk.pc); install it with `apt-get install dpdk-dev libdpdk-dev pkg-config` or run `scripts/setup.sh`")
        });
    let cflags = cflags();
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));

    compile_shim(&cflags);
    generate_bindings(&cflags, &out);
    if env::var_os("CARGO_FEATURE_LINK_STATIC").is_some() {
        link_static(&dpdk);
    } else {
        link_shared(&dpdk);
    }
}

/// `pkg-config --cflags libdpdk` split into arguments (`-include rte_config.h` stays two words).
fn cflags() -> Vec<String> {
    let out = std::process::Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .unwrap_or_else(|e| {
            fail(&format!(
                "cannot run pkg-config ({e}); install it with `apt-get install pkg-config`"
            ))
        });
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn compile_shim(cflags: &[String]) {
    let mut build = cc::Build::new();
    build.file("shim/shim.c").opt_level(3).warnings(false);
    for f in cflags {
        build.flag(f);
    }
    build.compile("rvs_dpdk_shim");
}

fn generate_bindings(cflags: &[String], out: &Path) {
    let builder = bindgen::Builder::default()
        .header("shim/shim.h")
        .clang_args(cflags)
        .allowlist_function("rte_.*|shim_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*|rte_.*|SOCKET_ID_ANY")
        // Packed ARP structs contain the 2-aligned rte_ether_addr (rustc E0588); ARP is parsed
        // in Rust instead.
        .opaque_type("rte_arp_ipv4|rte_arp_hdr")
        // Constants built with RTE_BIT64() are function-like macros that cexpr cannot expand.
        .clang_macro_fallback()
        .clang_macro_fallback_build_dir(out)
        .parse_callbacks(Box::new(U64Macros))
        .derive_default(true)
        .derive_debug(false)
        .layout_tests(false)
        .generate_comments(false);
    // bindgen panics inside clang-sys when libclang cannot be loaded; turn that into one sentence.
    let generated =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || builder.generate()));
    let bindings = match generated {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => fail(&format!("bindgen could not parse the DPDK headers: {e}")),
        Err(_) => fail(
            "libclang was not found; install it with `apt-get install libclang-dev clang` or run `scripts/setup.sh`",
        ),
    };
    bindings
        .write_to_file(out.join("bindings.rs"))
        .unwrap_or_else(|e| fail(&format!("cannot write bindings.rs: {e}")));
}

fn link_static(dpdk: &pkg_config::Library) {
    for dir in &dpdk.link_paths {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
    let search: Vec<PathBuf> = dpdk
        .link_paths
        .iter()
        .cloned()
        .chain(
            [
                "/usr/lib/x86_64-linux-gnu",
                "/usr/lib64",
                "/usr/lib",
                "/usr/local/lib",
            ]
            .map(PathBuf::from),
        )
        .collect();
    let have_archive = |lib: &str| {
        search
            .iter()
            .any(|d| d.join(format!("lib{lib}.a")).exists())
    };

    let mut whole: Vec<String> = WHOLE_ARCHIVE.iter().map(|s| s.to_string()).collect();
    let mlx5 = pkg_config::Config::new()
        .cargo_metadata(false)
        .probe("libmlx5")
        .and_then(|_| {
            pkg_config::Config::new()
                .cargo_metadata(false)
                .probe("libibverbs")
        })
        .is_ok();
    if mlx5 {
        whole.extend(WHOLE_ARCHIVE_MLX5.iter().map(|s| s.to_string()));
    }
    // Operators add drivers by name, e.g. RVS_EXTRA_PMDS=net_bnxt,net_ena.
    if let Ok(extra) = env::var("RVS_EXTRA_PMDS") {
        whole.extend(
            extra
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| format!("rte_{}", s.trim())),
        );
    }
    for lib in &whole {
        if have_archive(lib) {
            println!("cargo:rustc-link-lib=static:+whole-archive,-bundle={lib}");
        } else {
            println!("cargo:warning=DPDK archive lib{lib}.a not found; that driver is not linked");
        }
    }
    // Everything else DPDK provides is linked as plain archives: only objects that are referenced
    // are pulled in, so unused libraries cost nothing. pkg-config's order is dependency order.
    for lib in &dpdk.libs {
        if lib.starts_with("rte_") && !whole.contains(lib) && have_archive(lib) {
            println!("cargo:rustc-link-lib=static:-bundle={lib}");
        }
    }
    // System libraries the linked archives need (net_pcap: pcap; EAL: numa, bsd, fdt).
    for lib in ["pcap", "numa", "bsd", "fdt", "m"] {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
    if mlx5 {
        println!("cargo:rustc-link-lib=dylib=mlx5");
        println!("cargo:rustc-link-lib=dylib=ibverbs");
    }
}

fn link_shared(dpdk: &pkg_config::Library) {
    for dir in &dpdk.link_paths {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
    for lib in &dpdk.libs {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
}
