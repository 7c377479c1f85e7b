//! The program's supervisor: a process between the worker and the program that kills the
//! program's whole process group when the worker dies, even by SIGKILL.
//!
//! `PR_SET_PDEATHSIG` alone reaches only the process that set it: a program that forks (data
//! loader workers, `sh -c 'sleep 1000 & ...'`) would leave its children running after a
//! `kill -9` of the worker. So the worker's child forks once more before `exec`: the forked copy
//! execs the program as the leader of a new process group, and the first child stays behind as
//! its supervisor, a member of that group that
//! - is told of the worker's death (`PR_SET_PDEATHSIG`, a signal it handles) and then SIGKILLs
//!   the whole group, itself included;
//! - is the subreaper of the program's orphans (`PR_SET_CHILD_SUBREAPER`), so they are reaped
//!   even where the worker runs as PID 1 of a container;
//! - ignores SIGTERM, SIGINT and SIGHUP (the worker's SIGTERM to the group is for the program);
//! - when the program ends, leaves the group, SIGKILLs what is left of it, and ends the way
//!   the program ended (its exit code, or the same signal), so the worker reads the program's
//!   status from its own child.
//!
//! It is a fork without `exec`: nothing to install, no second binary in the image, no libtorch
//! to load, no privilege (cgroups would need a delegated hierarchy, which neither a plain user
//! nor a default Kubernetes pod has). It runs only async-signal-safe calls (it is the child of
//! a multi-threaded process) and closes every descriptor it inherited. The limit: a descendant
//! that leaves the group on purpose (`setsid`, `setpgid`) is out of its reach.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

/// The worker's pid, as the supervisor saw it when it started.
static PARENT: AtomicI32 = AtomicI32::new(0);
/// The program's process group.
static GROUP: AtomicI32 = AtomicI32::new(0);

/// The signal the kernel sends the supervisor when the worker's thread that spawned it ends.
const PARENT_DIED: libc::c_int = libc::SIGUSR1;

/// Makes `cmd` run its program under a supervisor: the process `spawn` answers is the
/// supervisor; the program's process group is the supervisor's (`libc::getpgid` of it).
#[allow(unsafe_code)]
pub fn install(cmd: &mut Command) {
    let parent = i32::try_from(std::process::id()).unwrap_or(0);
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (fork, setpgid, prctl, getpid, getppid, sigaction, kill,
    // waitpid, close, _exit); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || split(parent));
    }
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// In the worker's child: forks the program, which returns (and `exec`s); the supervisor
/// never returns.
#[allow(unsafe_code)]
fn split(parent: i32) -> io::Result<()> {
    // SAFETY: async-signal-safe calls only (see `install`).
    unsafe {
        // The worker died between its fork and now: the death signal would never come.
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
        if libc::getppid() != parent {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        let supervisor = libc::getpid();
        let program = libc::fork();
        check(program)?;
        if program == 0 {
            // The program: the leader of its own group; it dies with its supervisor.
            check(libc::setpgid(0, 0))?;
            check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
            if libc::getppid() != supervisor {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            return Ok(());
        }
        supervise(parent, program)
    }
}

/// Kills the program's group when the worker is gone (the kernel's death signal may also come
/// from the program itself: the parent is checked).
extern "C" fn on_parent_death(_: libc::c_int) {
    #[allow(unsafe_code)]
    // SAFETY: getppid and kill are async-signal-safe.
    unsafe {
        if libc::getppid() != PARENT.load(Ordering::Relaxed) {
            libc::kill(-GROUP.load(Ordering::Relaxed), libc::SIGKILL);
        }
    }
}

/// The supervisor's life: see the module's documentation.
#[allow(unsafe_code)]
unsafe fn supervise(parent: i32, program: i32) -> ! {
    // SAFETY: async-signal-safe calls only; `action` and `status` live on this stack.
    unsafe {
        // Both sides set the group, whichever runs first (the program may have exec'd).
        libc::setpgid(program, program);
        libc::setpgid(0, program);
        PARENT.store(parent, Ordering::Relaxed);
        GROUP.store(program, Ordering::Relaxed);
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::signal(signal, libc::SIG_IGN);
        }
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_parent_death as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(PARENT_DIED, &action, std::ptr::null_mut());
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
        libc::prctl(libc::PR_SET_PDEATHSIG, PARENT_DIED);
        on_parent_death(PARENT_DIED);
        close_all();
        let mut status = 0;
        loop {
            let reaped = libc::waitpid(-1, &mut status, 0);
            if reaped == program {
                break;
            }
            if reaped < 0 && *libc::__errno_location() != libc::EINTR {
                // No child left: nothing to report but a failure.
                libc::_exit(127);
            }
        }
        // Out of the group, then whatever the program left in it goes.
        libc::setpgid(0, 0);
        libc::kill(-program, libc::SIGKILL);
        while libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
        end_like(status)
    }
}

/// Closes every descriptor the supervisor inherited: the worker's sockets, the program's pipes,
/// the pipe `spawn` waits on until `exec`.
#[allow(unsafe_code)]
unsafe fn close_all() {
    // SAFETY: close_range and close only close descriptors of this process.
    unsafe {
        if libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) == 0 {
            return;
        }
        let mut limit: libc::rlimit = std::mem::zeroed();
        let top = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur.min(1 << 20)
        } else {
            1 << 16
        };
        for fd in 0..top {
            libc::close(fd as libc::c_int);
        }
    }
}

/// Ends the supervisor as the program ended: its exit code, or its signal.
#[allow(unsafe_code)]
unsafe fn end_like(status: libc::c_int) -> ! {
    // SAFETY: async-signal-safe calls only.
    unsafe {
        if libc::WIFSIGNALED(status) {
            let signal = libc::WTERMSIG(status);
            libc::signal(signal, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::kill(libc::getpid(), signal);
            libc::_exit(128 + signal);
        }
        libc::_exit(libc::WEXITSTATUS(status))
    }
}
