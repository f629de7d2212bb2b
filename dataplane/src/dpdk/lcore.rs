//! Lcores: launching workers on EAL worker lcores, and the time-stamp counter.
//!
//! [`scope`] works like `std::thread::scope`: closures launched inside it may borrow from the
//! caller, because `scope` waits for every launched lcore before it returns, also when the
//! caller's closure unwinds.

use super::eal::Eal;
use super::Error;
use std::ffi::{c_int, c_void};
use std::marker::PhantomData;

type Job<'scope> = Box<dyn FnOnce() + Send + 'scope>;

/// Lcores launched in one [`scope`].
pub struct Scope<'scope> {
    launched: std::cell::RefCell<Vec<u32>>,
    _borrows: PhantomData<&'scope mut &'scope ()>,
}

/// Runs `f` with a [`Scope`] on which workers can be launched, then waits for all of them.
pub fn scope<'env, F, R>(_eal: &'env Eal, f: F) -> R
where
    F: for<'scope> FnOnce(&'scope Scope<'env>) -> R,
{
    let scope = Scope {
        launched: std::cell::RefCell::new(Vec::new()),
        _borrows: PhantomData,
    };
    // Joining in a guard makes the wait happen on unwind too, which is what makes the
    // lifetime erasure in `launch` sound.
    struct Join<'a, 'env>(&'a Scope<'env>);
    impl Drop for Join<'_, '_> {
        fn drop(&mut self) {
            for lcore in self.0.launched.borrow_mut().drain(..) {
                // SAFETY: `lcore` was launched by this scope; waiting has no preconditions.
                unsafe {
                    dpdk_sys::rte_eal_wait_lcore(lcore);
                }
            }
        }
    }
    let join = Join(&scope);
    let result = f(join.0);
    drop(join);
    result
}

impl<'env> Scope<'env> {
    /// Runs `job` on worker lcore `lcore`. Fails if the lcore is not an enabled EAL worker lcore
    /// or is busy.
    pub fn launch<F>(&self, lcore: u32, job: F) -> Result<(), Error>
    where
        F: FnOnce() + Send + 'env,
    {
        // SAFETY: plain queries of EAL configuration.
        let (enabled, main) = unsafe {
            (
                dpdk_sys::rte_lcore_is_enabled(lcore) != 0,
                dpdk_sys::rte_get_main_lcore(),
            )
        };
        if !enabled || lcore == main {
            return Err(Error::new(
                format!("lcore {lcore} is not an EAL worker lcore (main lcore is {main}; check the EAL -l/--lcores list)"),
                19,
            ));
        }
        let job: Job<'env> = Box::new(job);
        // SAFETY: the job may borrow data that lives for 'env; `scope` waits for this lcore
        // before 'env ends (also on unwind), so erasing the lifetime cannot let the job outlive
        // its borrows.
        let job: Job<'static> = unsafe { std::mem::transmute::<Job<'env>, Job<'static>>(job) };
        let arg = Box::into_raw(Box::new(job)) as *mut c_void;
        // SAFETY: `trampoline` takes ownership of `arg`, a leaked Box<Job>.
        let rc = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
        if rc != 0 {
            // SAFETY: the launch failed, so the lcore never took `arg`; reclaim it.
            drop(unsafe { Box::from_raw(arg as *mut Job<'static>) });
            return Err(Error::new(format!("launch on lcore {lcore}"), rc));
        }
        self.launched.borrow_mut().push(lcore);
        Ok(())
    }
}

unsafe extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Box<Job> leaked by `Scope::launch`, handed to exactly one lcore.
    let job = unsafe { Box::from_raw(arg as *mut Job<'static>) };
    // A panic must not unwind into C.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)) {
        Ok(()) => 0,
        Err(_) => {
            log::error!("worker on lcore {} panicked", current());
            -1
        }
    }
}

/// The lcore id of the calling thread (`LCORE_ID_ANY` for non-EAL threads).
pub fn current() -> u32 {
    // SAFETY: reads a thread-local.
    unsafe { dpdk_sys::shim_lcore_id() }
}

/// The time-stamp counter.
#[inline(always)]
pub fn rdtsc() -> u64 {
    // SAFETY: reads the TSC; no memory is touched.
    unsafe { dpdk_sys::shim_rdtsc() }
}

/// TSC ticks per second, as measured by EAL.
pub fn tsc_hz(_eal: &Eal) -> u64 {
    // SAFETY: EAL is initialised (the token proves it).
    unsafe { dpdk_sys::rte_get_tsc_hz() }
}
