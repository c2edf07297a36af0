//! What tests that start servers of their own (a PostgreSQL cluster, a redis-server) need:
//! a free port, the installed PostgreSQL's binaries, and running them as `postgres`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A free TCP port on loopback (free when asked; a race with another process is unlikely).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `program` as the `postgres` user when this process is root (PostgreSQL refuses to run
/// as root), else as this user.
pub fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The binaries of the newest PostgreSQL installed (Debian: /usr/lib/postgresql/<v>/bin).
pub fn postgres_bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<u32> = std::fs::read_dir(root)
        .expect("PostgreSQL must be installed (/usr/lib/postgresql)")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    let version = versions.last().expect("a PostgreSQL version is installed");
    root.join(version.to_string()).join("bin")
}
