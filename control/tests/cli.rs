//! The `rovy-fast` binary as users run it: key commands, `check`, the top-level CONFIG form, and
//! `pubkey` against wireguard-tools' `wg pubkey`.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{TempDir, fc_key};
use rand::{RngCore, SeedableRng};
use rovy_control::keys::{PrivateKey, PublicKey};

const BIN: &str = env!("CARGO_BIN_EXE_rovy-fast");

/// DESIGN §1's golden vector, the private key in WireGuard's padded form.
const GOLDEN_PRIVATE: &str = "loUFLqeJND3KizotkvrQf8vA/i0DeLCfCylpBgpnpu0=";
const GOLDEN_PUBLIC_HEX: &str = "7af4c4eed05dc6b4d38fd7a19750b109ee2fe4395f7e626c976cced9e6116b21";
const GOLDEN_PEER_ID: &str = "bafzqaid26tco5uc5y22nhd6xuglvbmij5yx6iok7pzrgzf3mz3m6mellee";
const GOLDEN_ADDRESS: &str = "fc89:54a1:b598:365f:357:d6a:b108:db7b";

fn run_with_stdin(program: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // The program may stop reading early (oversized input); a broken pipe here is expected.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().unwrap()
}

fn rovy(args: &[&str], stdin: &[u8]) -> Output {
    run_with_stdin(BIN, args, stdin)
}

fn stdout(output: &Output) -> &str {
    std::str::from_utf8(&output.stdout).unwrap()
}

fn stderr(output: &Output) -> &str {
    std::str::from_utf8(&output.stderr).unwrap()
}

/// Asserts a failure: status 1, nothing on stdout, exactly `message` as one stderr line.
fn assert_fails(output: &Output, message: &str) {
    assert_eq!(stderr(output), format!("rovy-fast: {message}\n"));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(output), "");
}

fn identity_lines(public: &PublicKey) -> String {
    let address = public.address().unwrap();
    format!(
        "public_key: {public}\npeer_id: {}\naddress: {address}\n",
        public.peer_id()
    )
}

#[test]
fn genkey_pubkey_id_chain() {
    let generated = rovy(&["genkey"], b"");
    assert!(generated.status.success(), "{}", stderr(&generated));
    let line = stdout(&generated);
    assert_eq!(line.len(), 45, "{line:?}");
    assert!(line.ends_with('\n'));
    let private = PrivateKey::from_base64(line.trim_end()).unwrap();
    let public = private.public_key();
    assert_eq!(public.address().unwrap().octets()[0], 0xfc);

    let pubkey = rovy(&["pubkey"], line.as_bytes());
    assert!(pubkey.status.success(), "{}", stderr(&pubkey));
    assert_eq!(stdout(&pubkey), format!("{public}\n"));

    let from_stdin = rovy(&["id"], line.as_bytes());
    assert!(from_stdin.status.success(), "{}", stderr(&from_stdin));
    assert_eq!(stdout(&from_stdin), identity_lines(&public));

    let dir = TempDir::new();
    let key_file = dir.file("node.key", line, 0o600);
    let from_file = rovy(&["id", key_file.to_str().unwrap()], b"");
    assert!(from_file.status.success(), "{}", stderr(&from_file));
    assert_eq!(stdout(&from_file), identity_lines(&public));

    // Two runs give two different keys.
    let again = rovy(&["genkey"], b"");
    assert_ne!(stdout(&again), line);
}

#[test]
fn golden_vector_through_id() {
    let output = rovy(&["id"], format!("{GOLDEN_PRIVATE}\n").as_bytes());
    assert!(output.status.success(), "{}", stderr(&output));
    let mut public = [0u8; 32];
    for (i, byte) in public.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&GOLDEN_PUBLIC_HEX[2 * i..2 * i + 2], 16).unwrap();
    }
    assert_eq!(
        stdout(&output),
        format!(
            "public_key: {}\npeer_id: {GOLDEN_PEER_ID}\naddress: {GOLDEN_ADDRESS}\n",
            STANDARD.encode(public)
        )
    );
}

#[test]
fn id_of_a_key_without_fc_address() {
    let output = rovy(&["id"], b"dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "public_key: hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=\n\
         peer_id: bafzqaiefedyatcjqu5khjc353s2d5522bw7tudjghanpj25evghkvg2oni\n\
         address: none (not an fc00::/8 key; usable as kind = \"wireguard\" peer only)\n"
    );
}

#[test]
fn garbage_stdin_is_one_clear_error() {
    let not_base64 = "stdin: key is not base64 (a WireGuard key is 44 characters of standard \
                      base64 ending in '='; input length";
    for command in ["pubkey", "id"] {
        assert_fails(&rovy(&[command], b""), "stdin: key is empty");
        assert_fails(&rovy(&[command], b"\n\n"), "stdin: key is empty");
        assert_fails(&rovy(&[command], b"garbage\n"), &format!("{not_base64} 7)"));
        assert_fails(
            &rovy(&[command], b"\xff\xfe\x00\x01"),
            &format!("{not_base64} 4)"),
        );
        // Leading whitespace is refused, as `wg` refuses it.
        assert_fails(
            &rovy(&[command], format!(" {GOLDEN_PRIVATE}").as_bytes()),
            &format!("{not_base64} 45)"),
        );
        assert_fails(
            &rovy(&[command], b"AAAA\n"),
            "stdin: key is 3 bytes long, not 32",
        );
        assert_fails(
            &rovy(&[command], &vec![b'A'; 1 << 20]),
            "stdin: more than 4096 bytes; expected one key",
        );
    }
}

#[test]
fn open_key_files_are_refused_with_a_chmod_hint() {
    let dir = TempDir::new();
    let key = fc_key(5);
    let path = dir.file("open.key", key.to_base64().as_str(), 0o644);
    let shown = path.to_str().unwrap();
    assert_fails(
        &rovy(&["id", shown], b""),
        &format!(
            "key file {shown} is accessible by group or others (mode 0644); run `chmod 600 {shown}`"
        ),
    );
    let missing = dir.path().join("missing.key");
    assert_fails(
        &rovy(&["id", missing.to_str().unwrap()], b""),
        &format!(
            "key file {}: No such file or directory (os error 2)",
            missing.display()
        ),
    );
}

fn write_config(dir: &TempDir, peer_public_key: &str) -> String {
    dir.file(
        "node.key",
        &format!("{}\n", fc_key(10).to_base64().as_str()),
        0o600,
    );
    let text = format!(
        "[interface]\nprivate_key_file = \"node.key\"\nlisten = [\"/ip4/0.0.0.0/udp/1312\"]\n\n\
         [[peer]]\npublic_key = \"{peer_public_key}\"\nallowed_ips = [\"10.0.0.2/32\"]\n"
    );
    let path = dir.file("rovy0.toml", &text, 0o600);
    path.to_str().unwrap().to_owned()
}

#[test]
fn check_reports_a_summary_or_the_error() {
    let dir = TempDir::new();
    let good = write_config(&dir, &fc_key(11).public_key().to_string());
    let output = rovy(&["check", &good], b"");
    assert!(output.status.success(), "{}", stderr(&output));
    let address = fc_key(10).public_key().address().unwrap();
    assert_eq!(
        stdout(&output),
        format!(
            "config OK: interface rovy0, address {address}, listening on 0.0.0.0:1312, \
             1 peer (1 rovy, 0 wireguard)\n"
        )
    );

    let bad = write_config(&dir, "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=");
    assert_fails(
        &rovy(&["check", &bad], b""),
        &format!(
            "{bad}: peer[0].public_key: hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo= has no \
             fc00::/8 address, so it cannot be a rovy peer; if it is a plain WireGuard peer, \
             set kind = \"wireguard\" (line 6, column 14)"
        ),
    );
}

#[test]
fn running_a_node_refuses_a_bad_config_or_arguments_before_starting() {
    // Running a good config starts the node: that is exercised by scripts/e2e.sh in
    // namespaces, not here on the host.
    let dir = TempDir::new();
    let good = write_config(&dir, &fc_key(11).public_key().to_string());
    let missing = dir.path().join("missing.toml");
    assert_fails(
        &rovy(&[missing.to_str().unwrap()], b""),
        &format!(
            "{}: cannot open: No such file or directory (os error 2)",
            missing.display()
        ),
    );
    // Out-of-range --cores is a usage error from the argument parser.
    let usage = rovy(&["--cores", "0", &good], b"");
    assert_eq!(usage.status.code(), Some(2));
    assert!(
        stderr(&usage).contains("0 is not in 1..=256"),
        "{}",
        stderr(&usage)
    );
    // A malformed CPU list is a usage error too; a CPU the process may not use is refused
    // before anything is created.
    let usage = rovy(&["--cpus", "1-0", &good], b"");
    assert_eq!(usage.status.code(), Some(2));
    assert!(
        stderr(&usage).contains("range 1-0 runs backwards (write 0-1)"),
        "{}",
        stderr(&usage)
    );
    let refused = rovy(&["--backend", "epoll", "--cpus", "0,1023", &good], b"");
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).starts_with(
            "rovy-fast: --cpus 0,1023: this process may not run on CPU 1023 (it may use "
        ),
        "{}",
        stderr(&refused)
    );
}

/// `pubkey` must print exactly what `wg pubkey` prints. Needs wireguard-tools: required when
/// `CI` is set, skipped with a note otherwise.
#[test]
fn pubkey_is_byte_identical_to_wg_pubkey() {
    let wg_available = Command::new("wg")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !wg_available {
        assert!(
            std::env::var_os("CI").is_none(),
            "`wg` (wireguard-tools) is not on PATH, and CI is set: install wireguard-tools"
        );
        eprintln!("note: `wg` not found; skipping the wg pubkey comparison");
        return;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    for round in 0..20 {
        // Raw random bytes, not clamped: both sides must clamp the same way.
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        let input = format!("{}\n", STANDARD.encode(bytes));
        let ours = rovy(&["pubkey"], input.as_bytes());
        let theirs = run_with_stdin("wg", &["pubkey"], input.as_bytes());
        assert!(theirs.status.success(), "wg: {}", stderr(&theirs));
        assert!(ours.status.success(), "{}", stderr(&ours));
        assert_eq!(ours.stdout, theirs.stdout, "round {round}, input {input}");
        assert_eq!(ours.stdout.len(), 45);
    }
}
