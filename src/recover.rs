//! Going on after a panic elsewhere: a lock's value even where a thread panicked holding it, and
//! a caught panic's message in one line. For the long-lived parts (the listener, playback
//! workers) that must outlive a failed request.

use std::any::Any;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The lock's value, even where a thread panicked while holding it. Only for values that stay
/// whole between two calls (no half-done update is ever left in them).
pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a caught panic said, in one line.
pub fn panic_text(payload: &(dyn Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    text.lines().next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::catch_unwind;

    #[test]
    fn a_poisoned_lock_still_gives_its_value_and_panics_read_as_one_line() {
        let m = Mutex::new(5);
        let caught = catch_unwind(|| {
            let _held = m.lock().unwrap();
            panic!("first line\nsecond");
        });
        assert!(m.is_poisoned());
        assert_eq!(*lock(&m), 5);
        assert_eq!(panic_text(&*caught.unwrap_err()), "first line");
        assert_eq!(panic_text(&*Box::new(3u8)), "a panic");
    }
}
