//! EAL initialisation and teardown. DPDK allows `rte_eal_init` once per process, so [`Eal`] is a
//! process-wide token: a second `init` fails instead of reaching DPDK's fatal path.

use super::Error;
use std::ffi::{c_char, CString};
use std::sync::atomic::{AtomicBool, Ordering};

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// Proof that the EAL is up; dropping it runs `rte_eal_cleanup`. Drop it last, after ports and
/// mempools.
pub struct Eal {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Eal {
    /// Runs `rte_eal_init` with `args` (without a program name; `rvsd` is prepended).
    pub fn init(args: &[String]) -> Result<Eal, Error> {
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(Error::new(
                "rte_eal_init (EAL is already initialised in this process)",
                114,
            ));
        }
        let owned: Vec<CString> = std::iter::once("rvsd")
            .chain(args.iter().map(String::as_str))
            .map(|a| {
                CString::new(a)
                    .map_err(|_| Error::new(format!("EAL argument {a:?} contains NUL"), 22))
            })
            .collect::<Result<_, _>>()?;
        // rte_eal_init may permute argv, so it gets its own array of pointers into `owned`.
        let mut argv: Vec<*mut c_char> = owned.iter().map(|a| a.as_ptr() as *mut c_char).collect();
        let argc =
            i32::try_from(argv.len()).map_err(|_| Error::new("too many EAL arguments", 7))?;
        // SAFETY: argv holds argc valid NUL-terminated strings that outlive the call (`owned`);
        // EAL keeps no pointer to them after init returns.
        let rc = unsafe { dpdk_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if rc < 0 {
            return Err(Error::from_rte_errno(format!(
                "rte_eal_init({})",
                args.join(" ")
            )));
        }
        Ok(Eal {
            _not_send: std::marker::PhantomData,
        })
    }

    /// The DPDK version string, e.g. `DPDK 22.11.11`.
    pub fn version(&self) -> String {
        // SAFETY: returns a pointer to a static NUL-terminated string.
        let v = unsafe { std::ffi::CStr::from_ptr(dpdk_sys::shim_version()) };
        v.to_string_lossy().into_owned()
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: EAL was initialised by this token; every DPDK object was released before (the
        // caller's drop order), and no lcore is running (lcore::scope joins them all).
        unsafe {
            dpdk_sys::rte_eal_cleanup();
        }
    }
}
