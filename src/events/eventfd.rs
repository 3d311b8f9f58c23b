//! A Linux eventfd that is readable while events wait, for embedders that poll.

use std::io;

pub struct EventFd(i32);

impl EventFd {
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: plain syscall; the descriptor is owned by the returned value.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(EventFd(fd))
        }
    }

    pub fn raw(&self) -> i32 {
        self.0
    }

    pub fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our own descriptor.
        let _ = unsafe { libc::write(self.0, (&one as *const u64).cast(), 8) };
    }

    /// Clears the readable state; called before draining so a later push re-arms it.
    pub fn reset(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64; EAGAIN when already clear is fine.
        let _ = unsafe { libc::read(self.0, (&mut v as *mut u64).cast(), 8) };
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        // SAFETY: closing the descriptor we own, once.
        unsafe { libc::close(self.0) };
    }
}
