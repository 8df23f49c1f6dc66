//! Where a listener is: a Unix socket path or a TCP host:port, the default socket path, and the
//! byte streams of both kinds behind one type.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The environment variable naming the listener on the server side.
pub const LISTENER_ENV: &str = "NANOTUNE_LISTENER";

/// How long a TCP connect may take before the listener counts as not answering.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// A listener's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    Unix(PathBuf),
    /// host:port (the listener itself binds 127.0.0.1 only; a host elsewhere is a tunnel).
    Tcp(String),
}

impl Address {
    /// `HOST:PORT` (no `/`, a numeric port) is TCP; anything else is a socket path.
    pub fn parse(text: &str) -> Result<Address> {
        let text = text.trim();
        if text.is_empty() {
            bail!("an empty listener address");
        }
        if !text.contains('/') {
            if let Some((host, port)) = text.rsplit_once(':') {
                if !host.is_empty() && port.parse::<u16>().is_ok() {
                    return Ok(Address::Tcp(text.to_string()));
                }
            }
        }
        Ok(Address::Unix(PathBuf::from(text)))
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Unix(path) => write!(f, "{}", path.display()),
            Address::Tcp(hostport) => write!(f, "{hostport}"),
        }
    }
}

/// The socket path both ends use by default: `/tmp/nanotune-$USER.sock`. The README's
/// `ssh -R /tmp/nanotune-$USER.sock:/tmp/nanotune-$USER.sock gpu-box` creates it on the server
/// (sshd neither expands `~` nor accepts a relative path there, so it must be a fixed absolute
/// path), and `nanotune listen` listens there on the laptop.
pub fn default_socket_path() -> PathBuf {
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty() && u.chars().all(|c| c.is_alphanumeric() || "._-".contains(c)))
        // SAFETY: getuid cannot fail.
        .unwrap_or_else(|| format!("uid{}", unsafe { libc::getuid() }));
    PathBuf::from(format!("/tmp/nanotune-{user}.sock"))
}

/// A connection to a listener (or, on the listener's side, from a client).
#[derive(Debug)]
pub enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    /// Connects to `address`. A Unix socket must belong to this user: on a shared server another
    /// user could otherwise put a socket at the default path and hear (or fake) the music.
    pub fn connect(address: &Address) -> Result<Conn> {
        match address {
            Address::Unix(path) => {
                check_owner(path)?;
                let stream = UnixStream::connect(path)
                    .with_context(|| format!("connecting to {}", path.display()))?;
                Ok(Conn::Unix(stream))
            }
            Address::Tcp(hostport) => {
                let addrs: Vec<_> = hostport
                    .to_socket_addrs()
                    .with_context(|| format!("looking up {hostport}"))?
                    .collect();
                let mut last = None;
                for addr in addrs {
                    match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                        Ok(stream) => {
                            // Small messages (a pause, a status) go out at once.
                            let _ = stream.set_nodelay(true);
                            return Ok(Conn::Tcp(stream));
                        }
                        Err(e) => last = Some(e),
                    }
                }
                match last {
                    Some(e) => Err(e).with_context(|| format!("connecting to {hostport}")),
                    None => bail!("{hostport} names no address"),
                }
            }
        }
    }

    pub fn try_clone(&self) -> std::io::Result<Conn> {
        Ok(match self {
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
        })
    }

    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        match self {
            Conn::Unix(s) => s.set_read_timeout(timeout),
            Conn::Tcp(s) => s.set_read_timeout(timeout),
        }
    }

    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        match self {
            Conn::Unix(s) => s.set_write_timeout(timeout),
            Conn::Tcp(s) => s.set_write_timeout(timeout),
        }
    }

    /// Ends the connection both ways (a reader blocked on it returns).
    pub fn shutdown(&self) {
        let _ = match self {
            Conn::Unix(s) => s.shutdown(Shutdown::Both),
            Conn::Tcp(s) => s.shutdown(Shutdown::Both),
        };
    }

    /// "unix" or "tcp 127.0.0.1:40000", for log lines.
    pub fn peer(&self) -> String {
        match self {
            Conn::Unix(_) => "unix socket".into(),
            Conn::Tcp(s) => match s.peer_addr() {
                Ok(addr) => format!("tcp {addr}"),
                Err(_) => "tcp".into(),
            },
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Unix(s) => s.write(buf),
            Conn::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Unix(s) => s.flush(),
            Conn::Tcp(s) => s.flush(),
        }
    }
}

/// Refuses a path that is not a socket, or a socket of another user.
pub fn check_owner(path: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(path)
        .with_context(|| format!("connecting to {}", path.display()))?;
    if !meta.file_type().is_socket() {
        bail!("{} is not a socket", path.display());
    }
    // SAFETY: getuid cannot fail.
    let me = unsafe { libc::getuid() };
    if meta.uid() != me {
        bail!(
            "{} belongs to another user (uid {}), not connecting",
            path.display(),
            meta.uid()
        );
    }
    Ok(())
}
