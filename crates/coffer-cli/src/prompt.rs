//! Reading a secret from the terminal without echoing it.

use std::io::{self, BufRead, Write};
use std::os::fd::AsRawFd;

use zeroize::Zeroizing;

/// Prints `question` on standard error and reads one line from the terminal on standard
/// input with echo turned off.
pub fn hidden(question: &str) -> io::Result<Zeroizing<String>> {
    let stdin = io::stdin();
    let fd = stdin.as_raw_fd();
    // SAFETY: termios is plain data; tcgetattr fills it for a valid descriptor.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ECHO;
    quiet.c_lflag |= libc::ECHONL;
    // SAFETY: `quiet` is a valid termios derived from the current settings.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) } != 0 {
        return Err(io::Error::last_os_error());
    }
    eprint!("{question}");
    io::stderr().flush().ok();
    let mut line = Zeroizing::new(String::new());
    let read = stdin.lock().read_line(&mut line);
    // SAFETY: restores the settings read above.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    read?;
    Ok(line)
}
