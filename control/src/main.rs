//! `rovy-fast`: run a node, or manage its keys and config.
//!
//! Every failure is one line on stderr, `rovy-fast: <message>`, and exit status 1.
#![forbid(unsafe_code)]

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rovy_control::api;
use rovy_control::config::{CORES_RANGE, Config, Listen, PeerKind};
use rovy_control::cpus::CpuList;
use rovy_control::daemon::{self, Backend, RunOptions};
use rovy_control::keys::{
    KeyParseError, PrivateKey, read_private_key_file, read_secret_bytes, trim_key_line,
};
use rovy_control::tune;

/// A key and its newline.
const KEY_LINE_LEN: usize = 45;
/// Most stdin read for a key.
const MAX_KEY_INPUT_LEN: usize = 4096;

#[derive(Debug, Parser)]
#[command(
    name = "rovy-fast",
    version,
    about = "a WireGuard-compatible overlay network node",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    /// Worker threads, one per core (overrides the config's `cores`).
    #[arg(long, value_name = "N", value_parser = cores_parser())]
    cores: Option<u16>,
    /// Pin worker i to the i-th CPU of LIST, e.g. `2,3` or `0-3` (default: the CPUs this
    /// process may use, in increasing order). Without --cores, one worker per listed CPU.
    #[arg(long, value_name = "LIST")]
    cpus: Option<CpuList>,
    /// Worker I/O backend; `auto` picks the best this kernel allows. Also `ROVY_BACKEND`.
    #[arg(
        long,
        value_name = "auto|uring|epoll",
        env = "ROVY_BACKEND",
        default_value = "auto"
    )]
    backend: BackendChoice,
    /// TUN and UDP segmentation offloads; `auto` uses what the kernel accepts, `off` moves one
    /// packet per system call. Also `ROVY_OFFLOADS`.
    #[arg(
        long,
        value_name = "auto|off",
        env = "ROVY_OFFLOADS",
        default_value = "auto"
    )]
    offloads: OffloadChoice,
    /// The node's local API socket (default /run/rovy/NAME.sock; in a network namespace other
    /// than the host's, /run/rovy/netns/NSNAME/NAME.sock).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Config file of the node to run in the foreground.
    #[arg(value_name = "CONFIG", required = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum BackendChoice {
    Auto,
    Uring,
    Epoll,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OffloadChoice {
    Auto,
    Off,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a new private key (WireGuard's base64 form) that owns an fc00::/8 address.
    Genkey,
    /// Read a private key on stdin and print its public key, as `wg pubkey` does.
    Pubkey,
    /// Print the public key, PeerID and fc00::/8 address of a private key.
    Id {
        /// Private key file (mode 0600); stdin when absent.
        keyfile: Option<PathBuf>,
    },
    /// Load and validate a config file and the key files it names.
    Check {
        /// Config file to check.
        config: PathBuf,
    },
    /// Show the status of the node running on this host: peers, links, routes, traffic,
    /// workers, drops.
    Status(NodeQuery),
    /// The overlay's routes.
    Route {
        #[command(subcommand)]
        command: RouteCommand,
    },
    /// Inspect this machine for what holds a node's packet rate back (socket buffers, backlog,
    /// CPU governors, uplink GRO, IRQ affinity, RPS, io_uring) and print what to change; exits
    /// 1 when something costs packets now. tuning/ holds the matching sysctl profile.
    Tune {
        /// The CPUs the node's workers will run on, as given to the node's --cpus (default:
        /// the CPUs this process may use).
        #[arg(long, value_name = "LIST")]
        cpus: Option<CpuList>,
        /// Worker count, as given to the node's --cores (the first N of the CPUs).
        #[arg(long, value_name = "N", value_parser = cores_parser())]
        cores: Option<u16>,
        /// An interface the node's traffic leaves by (repeatable; default: every Ethernet
        /// interface that is up).
        #[arg(long = "interface", value_name = "IF")]
        interfaces: Vec<String>,
    },
    /// Print a shell completion script for SHELL, generated from this command line, e.g.
    /// `rovy-fast completions bash > /etc/bash_completion.d/rovy-fast`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page rovy-fast(1) in roff, generated from this command line, e.g.
    /// `rovy-fast man > /usr/local/share/man/man1/rovy-fast.1`.
    Man,
    /// The running node's peers: list them, connect to a rovy node, remove one.
    Peer {
        #[command(subcommand)]
        command: PeerCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PeerCommand {
    /// Every peer: PeerID, public key, kind, endpoint, allowed IPs, latest handshake, transfer.
    List(NodeQuery),
    /// Dial a rovy node now, adding it as a peer if it is not one (until the next reload, which
    /// makes the peers the config file's again).
    Connect {
        /// `/ip4|ip6|dns/HOST/udp/PORT/rovy/PEERID`, or `HOST:PORT` with --key.
        #[arg(value_name = "MULTIADDR|HOST:PORT")]
        target: String,
        /// The peer's public key (base64) or PeerID, when the target does not name it.
        #[arg(long, value_name = "PUBKEY")]
        key: Option<String>,
        #[command(flatten)]
        node: NodeQuery,
    },
    /// Remove a peer from the running node, by PeerID or public key.
    Disconnect {
        /// The peer's PeerID (`bafzqai…`) or public key (base64).
        #[arg(value_name = "PEERID|PUBKEY")]
        peer: String,
        #[command(flatten)]
        node: NodeQuery,
    },
}

#[derive(Debug, Subcommand)]
enum RouteCommand {
    /// Every destination the node has a route to: address, label, metric, next hop, age,
    /// PeerID.
    List(NodeQuery),
}

/// Which running node to ask, and how to print its answer.
#[derive(Debug, clap::Args)]
struct NodeQuery {
    /// The node's API socket (default: /run/rovy/INTERFACE.sock, or
    /// /run/rovy/netns/NSNAME/INTERFACE.sock when run inside a network namespace).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Print the answer as one line of JSON, for scripts.
    #[arg(long)]
    json: bool,
    /// Interface of the node to ask, when no socket is given.
    #[arg(long, default_value = "rovy0")]
    interface: String,
}

fn cores_parser() -> clap::builder::RangedI64ValueParser<u16> {
    clap::value_parser!(u16).range(i64::from(*CORES_RANGE.start())..=i64::from(*CORES_RANGE.end()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(status) => status,
        Err(message) => {
            let _ = writeln!(io::stderr(), "rovy-fast: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match (cli.command, cli.config) {
        (Some(Command::Genkey), _) => {
            let key = PrivateKey::generate(&mut rand_core::OsRng);
            print_lines(&[key.to_base64().as_str()])?;
        }
        (Some(Command::Pubkey), _) => {
            let key = read_key_from_stdin()?;
            print_lines(&[&key.public_key().to_string()])?;
        }
        (Some(Command::Id { keyfile }), _) => {
            let key = match keyfile {
                Some(path) => read_private_key_file(&path).map_err(|error| error.to_string())?,
                None => read_key_from_stdin()?,
            };
            print_identity(&key)?;
        }
        (Some(Command::Check { config }), _) => {
            let config = Config::load(&config).map_err(|error| error.to_string())?;
            print_lines(&[&summary(&config)])?;
        }
        (Some(Command::Status(q)), _) => {
            print_lines(&[&api::status_command(q.socket, &q.interface, q.json)?])?;
        }
        (
            Some(Command::Route {
                command: RouteCommand::List(q),
            }),
            _,
        ) => print_lines(&[&api::route_list_command(q.socket, &q.interface, q.json)?])?,
        (Some(Command::Peer { command }), _) => {
            let answer = match command {
                PeerCommand::List(q) => api::peer_list_command(q.socket, &q.interface, q.json)?,
                PeerCommand::Connect { target, key, node } => api::peer_connect_command(
                    node.socket,
                    &node.interface,
                    &target,
                    key.as_deref(),
                    node.json,
                )?,
                PeerCommand::Disconnect { peer, node } => {
                    api::peer_disconnect_command(node.socket, &node.interface, &peer, node.json)?
                }
            };
            print_lines(&[&answer])?;
        }
        (
            Some(Command::Tune {
                cpus,
                cores,
                interfaces,
            }),
            _,
        ) => return tune(cpus, cores, &interfaces),
        (Some(Command::Completions { shell }), _) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut command, "rovy-fast", &mut out);
            write_stdout(&out)?;
        }
        (Some(Command::Man), _) => {
            let mut out = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut out)
                .map_err(|error| format!("man page: {error}"))?;
            write_stdout(&out)?;
        }
        (None, Some(config)) => {
            let options = NodeOptions {
                cores: cli.cores,
                cpus: cli.cpus,
                backend: cli.backend,
                offloads: cli.offloads == OffloadChoice::Auto,
                socket: cli.socket,
            };
            return run_node(&config, options);
        }
        (None, None) => return Err("no CONFIG given (see rovy-fast --help)".to_owned()),
    }
    Ok(ExitCode::SUCCESS)
}

/// `rovy-fast tune`: the report on stdout, failure when something is to fix.
fn tune(
    cpus: Option<CpuList>,
    cores: Option<u16>,
    interfaces: &[String],
) -> Result<ExitCode, String> {
    let mut workers = match cpus {
        Some(list) => list.ids().to_vec(),
        None => rovy_dataplane::sys::allowed_cores()
            .map_err(|error| format!("cannot read this process's CPUs: {error}"))?,
    };
    if let Some(cores) = cores {
        workers.truncate(usize::from(cores));
    }
    let io_uring = rovy_dataplane::sys::uring::probe().map_err(|error| error.to_string());
    let gro = |name: &str| rovy_dataplane::sys::ethtool::gro_enabled(name).ok();
    let facts = tune::read_facts(Path::new("/"), interfaces, gro, io_uring);
    let findings = tune::assess(&facts, &workers);
    print_lines(&[tune::render(&findings, &workers, &facts).trim_end()])?;
    Ok(if findings.iter().any(|f| f.level == tune::Level::Fix) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The command-line options of a node run.
struct NodeOptions {
    cores: Option<u16>,
    cpus: Option<CpuList>,
    backend: BackendChoice,
    offloads: bool,
    socket: Option<PathBuf>,
}

/// Runs the node in the foreground until SIGINT or SIGTERM.
fn run_node(path: &Path, options: NodeOptions) -> Result<ExitCode, String> {
    let NodeOptions {
        cores,
        cpus,
        backend,
        offloads,
        socket,
    } = options;
    rovy_control::logging::init();
    // Before any key is read: no core file, no ptrace by other users.
    rovy_dataplane::sys::set_non_dumpable()
        .map_err(|error| format!("cannot keep keys out of core dumps: {error}"))?;
    let config = Config::load(path).map_err(|error| error.to_string())?;
    let backend = match backend {
        BackendChoice::Epoll => Backend::Epoll,
        BackendChoice::Uring => Backend::probe_uring()
            .map_err(|reason| format!("backend uring is not available: {reason}"))?,
        BackendChoice::Auto => Backend::probe_uring().unwrap_or_else(|reason| {
            tracing::warn!("io_uring not available ({reason}); using epoll");
            Backend::Epoll
        }),
    };
    daemon::run(
        config,
        RunOptions {
            cores,
            cpus,
            backend,
            offloads,
            socket,
            config_path: path.to_owned(),
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Reads one base64 private key from stdin, tolerating trailing whitespace as `wg` does.
fn read_key_from_stdin() -> Result<PrivateKey, String> {
    let bytes = read_secret_bytes(io::stdin().lock(), KEY_LINE_LEN, MAX_KEY_INPUT_LEN)
        .map_err(|error| format!("stdin: {error}"))?;
    if bytes.len() > MAX_KEY_INPUT_LEN {
        return Err(format!(
            "stdin: more than {MAX_KEY_INPUT_LEN} bytes; expected one key"
        ));
    }
    // Not `from_utf8_lossy`: on invalid input it would copy the bytes into a String that is
    // not wiped.
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| format!("stdin: {}", KeyParseError::NotBase64 { chars: bytes.len() }))?;
    PrivateKey::from_base64(trim_key_line(text)).map_err(|error| format!("stdin: {error}"))
}

fn print_identity(key: &PrivateKey) -> Result<(), String> {
    let public = key.public_key();
    let address = match public.address() {
        Some(address) => address.to_string(),
        None => r#"none (not an fc00::/8 key; usable as kind = "wireguard" peer only)"#.to_owned(),
    };
    print_lines(&[
        &format!("public_key: {public}"),
        &format!("peer_id: {}", public.peer_id()),
        &format!("address: {address}"),
    ])
}

/// One line saying what the node would be: interface, identity, listen addresses, peers.
fn summary(config: &Config) -> String {
    let interface = &config.interface;
    let address = interface
        .private_key
        .public_key()
        .address()
        .map_or_else(|| "no fc00::/8 address".to_owned(), |a| a.to_string());
    let listen = match &interface.listen {
        Listen::AllAddresses { port } => format!("udp port {port}"),
        Listen::Addresses(addresses) => addresses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    };
    let rovy = config
        .peers
        .iter()
        .filter(|peer| peer.kind == PeerKind::Rovy)
        .count();
    let wireguard = config.peers.len() - rovy;
    let peers = match config.peers.len() {
        1 => "1 peer".to_owned(),
        count => format!("{count} peers"),
    };
    format!(
        "config OK: interface {}, address {address}, listening on {listen}, \
         {peers} ({rovy} rovy, {wireguard} wireguard)",
        interface.name
    )
}

/// Writes `bytes` to stdout, turning a closed pipe into an error instead of a panic.
fn write_stdout(bytes: &[u8]) -> Result<(), String> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|error| format!("stdout: {error}"))
}

/// Writes lines to stdout, turning a closed pipe into an error instead of a panic.
fn print_lines(lines: &[&str]) -> Result<(), String> {
    let mut stdout = io::stdout().lock();
    for line in lines {
        writeln!(stdout, "{line}").map_err(|error| format!("stdout: {error}"))?;
    }
    stdout.flush().map_err(|error| format!("stdout: {error}"))
}
