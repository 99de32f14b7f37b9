//! Keeping keys out of core dumps.
//!
//! [`set_non_dumpable`] marks the whole process non-dumpable (`PR_SET_DUMPABLE` 0): no core
//! file, and no `ptrace` or `/proc/PID/mem` for other users. A key that lives for the whole run
//! is also held in a [`SecretPage`]: an anonymous page of its own marked `MADV_DONTDUMP`, so a
//! dump that happens anyway (a core pattern pipe that forces one, `gcore` by root after the
//! flag is reset) leaves it out. The page is never copied as its owner moves, and it is wiped
//! before it is unmapped.

use std::io;
use std::ptr::NonNull;

use zeroize::Zeroize;

use super::check;

/// Makes the process non-dumpable (inherited by threads started later; reset by `execve` of a
/// set-uid binary only).
pub fn set_non_dumpable() -> io::Result<()> {
    // SAFETY: PR_SET_DUMPABLE takes one integer argument and no pointers.
    check(
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0, 0, 0) },
        "prctl(PR_SET_DUMPABLE)",
    )
    .map(drop)
}

/// Whether the process may be dumped (`PR_GET_DUMPABLE`).
pub fn is_dumpable() -> io::Result<bool> {
    // SAFETY: PR_GET_DUMPABLE takes no arguments and returns the flag.
    check(
        unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) },
        "prctl(PR_GET_DUMPABLE)",
    )
    .map(|flag| flag != 0)
}

/// Smallest page size Linux uses; a secret must fit in one page.
const MIN_PAGE: usize = 4096;

/// `N` secret bytes in an anonymous page of their own, excluded from core dumps and wiped when
/// dropped.
pub struct SecretPage<const N: usize> {
    bytes: NonNull<[u8; N]>,
}

// SAFETY: the page is owned by this value alone (no aliasing pointer escapes except through
// `&self`/`&mut self` borrows), and plain bytes have no thread affinity.
unsafe impl<const N: usize> Send for SecretPage<N> {}
// SAFETY: shared access only reads the bytes; mutation needs `&mut self`.
unsafe impl<const N: usize> Sync for SecretPage<N> {}

impl<const N: usize> SecretPage<N> {
    /// A page holding a copy of `value`. Out of memory aborts, as for any allocation.
    pub fn new(value: &[u8; N]) -> Self {
        const { assert!(N > 0 && N <= MIN_PAGE) };
        // SAFETY: an anonymous private mapping with no address hint takes no pointers from us;
        // the kernel returns a fresh page-aligned, zero-filled region of at least N bytes or
        // MAP_FAILED.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                N,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        let Some(bytes) = NonNull::new(addr.cast::<[u8; N]>()).filter(|_| addr != libc::MAP_FAILED)
        else {
            std::alloc::handle_alloc_error(std::alloc::Layout::new::<[u8; N]>());
        };
        // SAFETY: `addr` is the page-aligned start of our N-byte mapping. A kernel without
        // MADV_DONTDUMP (before 3.4) refuses it; the page is then dumped like the rest of
        // memory, which `set_non_dumpable` prevents anyway.
        unsafe { libc::madvise(addr, N, libc::MADV_DONTDUMP) };
        let mut page = SecretPage { bytes };
        page.expose_mut().copy_from_slice(value);
        page
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8; N] {
        // SAFETY: `bytes` points to our live, readable mapping of N bytes, aligned for u8.
        unsafe { self.bytes.as_ref() }
    }

    /// The secret bytes, to fill in place.
    pub fn expose_mut(&mut self) -> &mut [u8; N] {
        // SAFETY: as in `expose`; `&mut self` makes this the only access.
        unsafe { self.bytes.as_mut() }
    }
}

impl<const N: usize> Drop for SecretPage<N> {
    fn drop(&mut self) {
        self.expose_mut().zeroize();
        // SAFETY: the mapping was created by `new` with length N and is unmapped only here;
        // no borrow of it outlives `self`.
        unsafe { libc::munmap(self.bytes.as_ptr().cast(), N) };
    }
}

impl<const N: usize> std::fmt::Debug for SecretPage<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretPage(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `VmFlags` of the mapping that holds `addr`, from `/proc/self/smaps`.
    fn vm_flags(addr: usize) -> String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let holds = |line: &str| {
            let range = line.split_whitespace().next().unwrap_or("");
            let Some((start, end)) = range.split_once('-') else {
                return false;
            };
            match (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) {
                (Ok(start), Ok(end)) => (start..end).contains(&addr),
                _ => false,
            }
        };
        let mut lines = smaps.lines().skip_while(|line| !holds(line));
        lines
            .find_map(|line| line.strip_prefix("VmFlags:").map(str::to_owned))
            .unwrap_or_else(|| panic!("no mapping holds {addr:x}"))
    }

    #[test]
    fn secret_page_holds_the_value_alone_in_a_page_left_out_of_dumps() {
        let mut page = SecretPage::new(&[0x5a; 32]);
        assert_eq!(page.expose(), &[0x5a; 32]);
        page.expose_mut()[0] = 1;
        assert_eq!(page.expose()[..2], [1, 0x5a]);
        let addr = page.expose().as_ptr() as usize;
        assert_eq!(addr % MIN_PAGE, 0, "page-aligned");
        let flags = vm_flags(addr);
        assert!(flags.split_whitespace().any(|f| f == "dd"), "{flags}");
    }

    #[test]
    fn process_becomes_non_dumpable() {
        set_non_dumpable().unwrap();
        assert!(!is_dumpable().unwrap());
    }
}
