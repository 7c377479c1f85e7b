//! Runs our own CPU kernels on libtorch's OpenMP thread pool, as libtorch's `at::parallel_for`
//! does (tch does not expose it).
//!
//! Why not threads of our own: after each parallel libtorch operation, the pool's threads spin
//! for a while waiting for the next one, on the very cores another thread would want. Measured
//! on lab 1's CIFAR shapes (2 cores), Adam split over a scoped thread ran no faster than on one
//! thread, and with the pool's spinning shortened (`GOMP_SPINCOUNT=10000`) it ran twice as fast:
//! the spinning thread had the core. On the pool, the spinning threads do the work.
//!
//! The pool is found at run time (`GOMP_parallel`, which GNU libgomp exports and LLVM's and
//! Intel's OpenMP runtimes export for compatibility). Without it, [`run`] says so and the caller
//! uses plain threads.

use std::ffi::{c_int, c_uint, c_void};
use std::sync::OnceLock;

type Body = extern "C" fn(*mut c_void);
type Parallel = unsafe extern "C" fn(Body, *mut c_void, c_uint, c_uint);
type ThreadNum = unsafe extern "C" fn() -> c_int;

/// The OpenMP runtime's entry points.
struct Omp {
    parallel: Parallel,
    thread_num: ThreadNum,
}

/// The loaded OpenMP runtime, if libtorch brought one.
#[allow(unsafe_code)]
fn omp() -> Option<&'static Omp> {
    static OMP: OnceLock<Option<Omp>> = OnceLock::new();
    OMP.get_or_init(|| {
        // SAFETY: dlsym with RTLD_DEFAULT and NUL-terminated names only looks symbols up. The
        // two names are the OpenMP runtime ABI's, whose signatures are the `Parallel` and
        // `ThreadNum` types above: `void GOMP_parallel(void (*)(void *), void *, unsigned,
        // unsigned)` and `int omp_get_thread_num(void)`.
        unsafe {
            let parallel = libc::dlsym(libc::RTLD_DEFAULT, c"GOMP_parallel".as_ptr());
            let thread_num = libc::dlsym(libc::RTLD_DEFAULT, c"omp_get_thread_num".as_ptr());
            if parallel.is_null() || thread_num.is_null() {
                return None;
            }
            Some(Omp {
                parallel: std::mem::transmute::<*mut c_void, Parallel>(parallel),
                thread_num: std::mem::transmute::<*mut c_void, ThreadNum>(thread_num),
            })
        }
    })
    .as_ref()
}

/// What each thread of the team runs.
struct Job<'a> {
    task: &'a (dyn Fn(usize) + Sync),
    thread_num: ThreadNum,
}

#[allow(unsafe_code)]
extern "C" fn body(data: *mut c_void) {
    // SAFETY: `data` is the `&Job` that `run` passed to GOMP_parallel, which returns only after
    // every thread of the team has returned from here, so the job outlives every use.
    let job = unsafe { &*data.cast_const().cast::<Job<'_>>() };
    // SAFETY: omp_get_thread_num takes no arguments and is callable from any thread.
    let i = unsafe { (job.thread_num)() };
    (job.task)(usize::try_from(i).unwrap_or(0));
}

/// Runs `task(i)` on a team of `threads` threads of the OpenMP pool (the calling thread is
/// number 0) and returns when all have. The runtime may give fewer threads than asked: the
/// caller must make sure every part of the work gets done (see [`adam`](super::adam)). Returns
/// false, having run nothing, when there is no OpenMP runtime in the process.
#[allow(unsafe_code)]
pub(super) fn run(threads: usize, task: &(dyn Fn(usize) + Sync)) -> bool {
    let Some(omp) = omp() else {
        return false;
    };
    let job = Job {
        task,
        thread_num: omp.thread_num,
    };
    let threads = c_uint::try_from(threads).unwrap_or(1);
    // SAFETY: `body` matches the callback type GOMP_parallel expects, and `job` lives on this
    // stack frame until GOMP_parallel has returned, which it does after the whole team has run
    // `body`. A panic in `task` aborts the process (it cannot unwind out of `extern "C"`).
    unsafe {
        (omp.parallel)(body, std::ptr::from_ref(&job).cast_mut().cast(), threads, 0);
    }
    true
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    /// With libtorch loaded (the test binary links it), the pool runs the tasks, on distinct
    /// thread numbers, and returns only when all are done.
    #[test]
    fn runs_every_task_on_the_pool() {
        let _ = tch::get_num_threads(); // makes sure libtorch (and its OpenMP) is loaded
        let seen = Mutex::new(Vec::new());
        let ran = super::run(3, &|i| seen.lock().unwrap().push(i));
        assert!(ran, "libtorch's OpenMP runtime was not found");
        let mut seen = seen.into_inner().unwrap();
        seen.sort_unstable();
        assert!(!seen.is_empty() && seen.len() <= 3, "{seen:?}");
        seen.dedup();
        assert_eq!(seen.len(), seen.iter().max().unwrap() + 1);
    }
}
