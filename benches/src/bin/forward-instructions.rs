//! Forwards frames through the in-memory middle node for `scripts/callgrind-pipeline.sh`: mode
//! `seal` only seals frames at A, mode `forward` also forwards each at B, so the difference is
//! the forwarder's instructions per frame. Counts the allocations B makes after warm-up and
//! fails if there are any.
//!
//! Usage: `forward-instructions seal|forward PACKETS FRAME_LEN`.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use rovy_benches::forwarding::{MTU, Middle};
use rovy_dataplane::sys::CountingAllocator;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator::new();

/// Frames forwarded before allocations are counted.
const WARM_UP: u64 = 16;

fn run(forward: bool, packets: u64, frame_len: usize) -> Result<(), String> {
    if !(48..=MTU).contains(&frame_len) {
        return Err(format!("FRAME_LEN must be 48..={MTU}"));
    }
    let middle = Middle::new();
    let mut buf = Middle::buffer();
    let now = Duration::from_secs(1);
    let mut allocations = 0;
    for i in 0..packets {
        let len = middle
            .seal_at_a(now, &mut buf, frame_len)
            .map_err(|r| format!("seal: {r:?}"))?;
        if forward {
            let before = ALLOCATOR.allocations();
            middle
                .forward_at_b(now, &mut buf[..len])
                .map_err(|r| format!("forward: {r:?}"))?;
            if i >= WARM_UP {
                allocations += ALLOCATOR.allocations() - before;
            }
        }
    }
    if allocations > 0 {
        return Err(format!("the forwarder allocated {allocations} times"));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str);
    let numbers = args
        .get(2)
        .and_then(|p| p.parse::<u64>().ok())
        .zip(args.get(3).and_then(|s| s.parse::<usize>().ok()));
    let (Some(forward), Some((packets, frame_len))) = (
        match mode {
            Some("seal") => Some(false),
            Some("forward") => Some(true),
            _ => None,
        },
        numbers,
    ) else {
        eprintln!("usage: forward-instructions seal|forward PACKETS FRAME_LEN");
        return ExitCode::from(2);
    };
    match run(forward, packets, frame_len) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("forward-instructions: {e}");
            ExitCode::FAILURE
        }
    }
}
