//! CPU pinning for the per-core workers.
//!
//! A worker pinned to one core keeps its TUN queue, socket and buffers warm in that core's
//! caches and never migrates in the middle of a batch. The cores a worker may use are the ones
//! in the process's affinity mask (set by `taskset`, cgroups or a container runtime), which need
//! not be `0..n`: [`allowed_cores`] lists them so the caller can pin worker `i` to the `i`-th.

use std::io;

use super::{check, with_context};

/// Number of CPU ids a `cpu_set_t` can hold (1024 with glibc).
const CPU_SET_CAPACITY: usize = libc::CPU_SETSIZE as usize;

/// Pins the calling thread to CPU `core` (an id as the kernel numbers them, as in
/// `/proc/cpuinfo`).
///
/// Fails with [`io::ErrorKind::InvalidInput`] when `core` is not allowed for this process or
/// does not exist.
pub fn pin_current_thread(core: usize) -> io::Result<()> {
    if core >= CPU_SET_CAPACITY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("pin thread to core {core}: core ids stop at {CPU_SET_CAPACITY}"),
        ));
    }
    // SAFETY: cpu_set_t is a plain bit array for which all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: core < CPU_SETSIZE was checked above, so the bit index lies inside the array.
    unsafe { libc::CPU_SET(core, &mut set) };
    // SAFETY: pid 0 means the calling thread; the kernel reads size_of::<cpu_set_t>() bytes
    // from `set`, which is exactly its size.
    let ret = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if ret == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    Err(if err.kind() == io::ErrorKind::InvalidInput {
        with_context(
            err,
            format!("pin thread to core {core} (offline or not in this process's allowed cores)"),
        )
    } else {
        with_context(err, format!("pin thread to core {core}"))
    })
}

/// The CPU ids this thread may run on, in increasing order (its `sched_getaffinity` mask).
pub fn allowed_cores() -> io::Result<Vec<usize>> {
    // SAFETY: all-zero is a valid (empty) cpu_set_t.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 means the calling thread; the kernel writes at most
    // size_of::<cpu_set_t>() bytes into `set`, which is exactly its size.
    let ret =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    check(ret, "sched_getaffinity")?;
    Ok((0..CPU_SET_CAPACITY)
        // SAFETY: every index is below CPU_SETSIZE, inside the bit array.
        .filter(|&core| unsafe { libc::CPU_ISSET(core, &set) })
        .collect())
}

/// How many CPUs this thread may run on: the default for `--cores`. At least 1, even if the
/// mask cannot be read (then the process runs wherever the kernel puts it anyway).
pub fn available_cores() -> usize {
    allowed_cores().map_or(1, |cores| cores.len().max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_cores_matches_the_allowed_set() {
        let cores = allowed_cores().unwrap();
        assert!(!cores.is_empty());
        assert!(cores.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(available_cores(), cores.len());
    }

    #[test]
    fn pinning_narrows_the_thread_mask_to_one_core() {
        let last = *allowed_cores().unwrap().last().unwrap();
        let mask = std::thread::spawn(move || {
            pin_current_thread(last).unwrap();
            allowed_cores().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(mask, vec![last]);
    }

    #[test]
    fn pinning_to_a_core_that_does_not_exist_says_so() {
        let err = pin_current_thread(CPU_SET_CAPACITY).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            err.to_string(),
            "pin thread to core 1024: core ids stop at 1024"
        );

        let missing = CPU_SET_CAPACITY - 1;
        assert!(!allowed_cores().unwrap().contains(&missing));
        let err = std::thread::spawn(move || pin_current_thread(missing).unwrap_err())
            .join()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(
            err.to_string().starts_with(
                "pin thread to core 1023 (offline or not in this process's allowed cores): "
            ),
            "{err}"
        );
    }
}
