//! `--cpus LIST`: which CPU each worker is pinned to.
//!
//! Worker `i` runs on the `i`-th CPU of the list, so the order matters: `--cpus 2,3` and
//! `--cpus 3,2` put worker 0 on different cores. That is how an operator keeps the data path
//! off the cores that take the NIC's interrupts, and how two nodes sharing one machine (a test
//! bench, two tunnels on one gateway) keep their busiest workers apart: a peer's traffic goes to
//! the same home worker index on both ends of a link, so with the same list both ends would sit
//! on one core.
//!
//! The syntax is the kernel's cpulist (`cpuset(7)`): comma-separated ids and inclusive ranges,
//! such as `0-3,8`.

use std::fmt;
use std::str::FromStr;

/// Highest CPU id accepted (the kernel's default `NR_CPUS` ceiling is far below; a glibc
/// `cpu_set_t` holds 1024).
pub const MAX_CPU: usize = 1023;

/// An ordered list of distinct CPU ids, never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(Vec<usize>);

impl CpuList {
    /// The CPU ids, in worker order.
    pub fn ids(&self) -> &[usize] {
        &self.0
    }

    /// The first id in `self` that is not in `allowed` (the CPUs this process may run on).
    pub fn first_not_in(&self, allowed: &[usize]) -> Option<usize> {
        self.0.iter().copied().find(|id| !allowed.contains(id))
    }
}

impl FromStr for CpuList {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut ids = Vec::new();
        for item in text.split(',') {
            let (first, last) = match item.split_once('-') {
                Some((first, last)) => (parse_id(first)?, parse_id(last)?),
                None => {
                    let id = parse_id(item)?;
                    (id, id)
                }
            };
            if first > last {
                return Err(format!(
                    "range {item} runs backwards (write {last}-{first})"
                ));
            }
            for id in first..=last {
                if ids.contains(&id) {
                    return Err(format!("CPU {id} is listed twice"));
                }
                ids.push(id);
            }
        }
        Ok(Self(ids))
    }
}

fn parse_id(text: &str) -> Result<usize, String> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "'{text}' is not a CPU id (expected a list like 0,1 or 0-3)"
        ));
    }
    match text.parse::<usize>() {
        Ok(id) if id <= MAX_CPU => Ok(id),
        _ => Err(format!(
            "CPU {text} is out of range (ids stop at {MAX_CPU})"
        )),
    }
}

impl fmt::Display for CpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, id) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{id}")?;
        }
        Ok(())
    }
}

/// `ids` in the kernel's cpulist form, runs of consecutive ids as ranges: `0-3,8`.
pub fn describe(ids: &[usize]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < ids.len() {
        let mut end = i;
        while end + 1 < ids.len() && ids[end + 1] == ids[end] + 1 {
            end += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&if end > i {
            format!("{}-{}", ids[i], ids[end])
        } else {
            ids[i].to_string()
        });
        i = end + 1;
    }
    if out.is_empty() {
        out.push_str("none");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str) -> Vec<usize> {
        text.parse::<CpuList>().unwrap().ids().to_vec()
    }

    fn error(text: &str) -> String {
        text.parse::<CpuList>().unwrap_err()
    }

    #[test]
    fn lists_and_ranges_keep_their_order() {
        assert_eq!(ids("1,0"), [1, 0]);
        assert_eq!(ids("3"), [3]);
        assert_eq!(ids("0-3,8"), [0, 1, 2, 3, 8]);
        assert_eq!(ids("6,2-3"), [6, 2, 3]);
        assert_eq!(ids(" 4 - 5 "), [4, 5]);
        assert_eq!(ids("1023"), [1023]);
        assert_eq!("2-3,0".parse::<CpuList>().unwrap().to_string(), "2,3,0");
    }

    #[test]
    fn malformed_lists_say_what_is_wrong() {
        assert_eq!(
            error(""),
            "'' is not a CPU id (expected a list like 0,1 or 0-3)"
        );
        assert_eq!(
            error("0,,1"),
            "'' is not a CPU id (expected a list like 0,1 or 0-3)"
        );
        assert_eq!(
            error("-1"),
            "'' is not a CPU id (expected a list like 0,1 or 0-3)"
        );
        assert_eq!(
            error("a"),
            "'a' is not a CPU id (expected a list like 0,1 or 0-3)"
        );
        assert_eq!(error("3-1"), "range 3-1 runs backwards (write 1-3)");
        assert_eq!(error("0,1,0"), "CPU 0 is listed twice");
        assert_eq!(error("0-2,1"), "CPU 1 is listed twice");
        assert_eq!(error("1024"), "CPU 1024 is out of range (ids stop at 1023)");
        assert_eq!(
            error("99999999999999999999999"),
            "CPU 99999999999999999999999 is out of range (ids stop at 1023)"
        );
    }

    #[test]
    fn describes_runs_as_ranges_in_the_given_order() {
        assert_eq!(describe(&[0, 1, 2, 3, 8]), "0-3,8");
        assert_eq!(describe(&[1, 0]), "1,0");
        assert_eq!(describe(&[5]), "5");
        assert_eq!(describe(&[2, 3, 0, 1]), "2-3,0-1");
        assert_eq!(describe(&[]), "none");
    }

    #[test]
    fn reports_the_first_cpu_outside_the_allowed_set() {
        let list: CpuList = "1,0,5".parse().unwrap();
        assert_eq!(list.first_not_in(&[0, 1, 5]), None);
        assert_eq!(list.first_not_in(&[0, 1]), Some(5));
        assert_eq!(list.first_not_in(&[]), Some(1));
    }
}
