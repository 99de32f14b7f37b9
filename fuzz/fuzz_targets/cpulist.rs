//! `--cpus` lists: any text, no panic; an accepted list is non-empty, without repeats, within
//! the id limit, and both its printed form and its run-length description (`0-3,8`) parse back
//! to the same list in the same order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rovy_control::cpus::{CpuList, MAX_CPU, describe};

fuzz_target!(|text: &str| {
    let Ok(list) = text.parse::<CpuList>() else {
        return;
    };
    let ids = list.ids();
    assert!(!ids.is_empty());
    assert!(ids.iter().all(|&id| id <= MAX_CPU));
    for (i, id) in ids.iter().enumerate() {
        assert!(!ids[..i].contains(id), "CPU {id} twice");
    }
    assert_eq!(list.to_string().parse::<CpuList>().as_ref(), Ok(&list));
    let described = describe(ids);
    assert_eq!(
        described.parse::<CpuList>().as_ref(),
        Ok(&list),
        "described as {described}"
    );
    assert_eq!(list.first_not_in(ids), None);
    assert_eq!(list.first_not_in(&[]), Some(ids[0]));
});
