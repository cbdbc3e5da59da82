//! The bounded, fair queue in front of password hashing.
//!
//! A fixed pool of threads runs every argon2 hash and verification. It bounds concurrent
//! hashing and, as important, memory: each argon2 run allocates 19 MiB, which the allocator
//! may keep in the arena of the thread that ran it. On a few dedicated threads that memory is
//! reused; spread over the runtime's many blocking threads it would pile up with every login.
//! A login storm must not slow the shells: the pool leaves one core free (one thread fewer than
//! the cores, at least one) and its threads run at a lower priority (nice 10), so keystrokes
//! and output always win the CPU.
//!
//! In front of it, admission: at most `capacity` hashes queued or running, at most
//! `per_address` of them for one client address, and the last `reserved` places only for
//! trusted attempts: from an address the account signed in from before (within 30 days) that
//! has no recent failed login. A flood from fresh addresses, however many, therefore never
//! takes the places a returning user needs. A hash that would exceed these is refused at once
//! ([`AuthError::Busy`]) instead of waiting behind a flood.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, mpsc};

use crate::AuthError;

/// How many hashes may wait or run, in all and per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashQueueLimits {
    /// Hashes queued or running at once.
    pub capacity: usize,
    /// Of those, at most this many for one client address.
    pub per_address: usize,
    /// Of the capacity, this many places only for trusted attempts (see [`Requester`]).
    pub reserved: usize,
}

impl HashQueueLimits {
    /// The defaults for `threads` hashing threads: 16 places per thread (a wait of well under
    /// a second), an eighth of them per address (at least 2), a quarter reserved.
    pub fn for_threads(threads: usize) -> Self {
        Self::for_capacity(threads.max(1) * 16)
    }

    /// The defaults for `capacity` places: an eighth per address (at least 2), a quarter
    /// reserved.
    pub fn for_capacity(capacity: usize) -> Self {
        HashQueueLimits { capacity, per_address: (capacity / 8).max(2), reserved: capacity / 4 }
    }
}

/// Who asks for a hash.
#[derive(Debug, Clone)]
pub(crate) enum Requester {
    /// A login from a client address (its throttle key); `trusted` when the account signed
    /// in from it before and it has not failed lately.
    Client { address: String, trusted: bool },
    /// The server itself or an authenticated administrator (a new password).
    Internal,
}

type Job = Box<dyn FnOnce() + Send>;

#[derive(Debug, Default)]
struct Admission {
    total: usize,
    per_address: HashMap<String, usize>,
}

/// The pool and its admission.
pub(crate) struct HashQueue {
    jobs: Mutex<mpsc::Sender<Job>>,
    admission: Arc<Mutex<Admission>>,
    limits: HashQueueLimits,
}

impl std::fmt::Debug for HashQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashQueue").field("limits", &self.limits).finish_non_exhaustive()
    }
}

/// Lowers the calling thread's scheduling priority to nice 10 (Linux: `setpriority` on a
/// thread id acts on that thread alone). Failure only costs fairness, so it is logged.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions; setpriority only reads its integer arguments.
        let result = unsafe {
            let thread = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, thread, 10)
        };
        if result != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower the hashing thread's priority");
        }
    }
}

/// A place in the queue, given back when dropped.
struct Place {
    admission: Arc<Mutex<Admission>>,
    address: Option<String>,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut admission = self.admission.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        admission.total = admission.total.saturating_sub(1);
        if let Some(address) = &self.address
            && let Some(count) = admission.per_address.get_mut(address)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                admission.per_address.remove(address);
            }
        }
    }
}

impl HashQueue {
    /// Starts `threads` hashing threads.
    pub(crate) fn new(threads: usize, limits: HashQueueLimits) -> Self {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads.max(1) {
            let receiver = receiver.clone();
            let spawned = std::thread::Builder::new().name(format!("wssh-argon2-{index}")).spawn(move || {
                lower_this_threads_priority();
                loop {
                    let job = receiver.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => break,
                    }
                }
            });
            if let Err(error) = spawned {
                tracing::warn!(%error, "cannot start a password hashing thread");
            }
        }
        HashQueue { jobs: Mutex::new(sender), admission: Arc::default(), limits }
    }

    /// How many hashing jobs are waiting or running now.
    pub(crate) fn in_queue(&self) -> usize {
        self.admission.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).total
    }

    /// The admission limits.
    pub(crate) fn limits(&self) -> HashQueueLimits {
        self.limits
    }

    /// Sets the admission limits.
    pub(crate) fn set_limits(&mut self, limits: HashQueueLimits) {
        self.limits = HashQueueLimits {
            capacity: limits.capacity.max(1),
            per_address: limits.per_address.max(1),
            reserved: limits.reserved.min(limits.capacity.saturating_sub(1)),
        };
    }

    fn admit(&self, requester: &Requester) -> Option<Place> {
        let limits = self.limits;
        let mut admission = self.admission.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let address = match requester {
            Requester::Internal => {
                if admission.total >= limits.capacity {
                    return None;
                }
                None
            }
            Requester::Client { address, trusted } => {
                let open = if *trusted { limits.capacity } else { limits.capacity - limits.reserved };
                let mine = admission.per_address.get(address).copied().unwrap_or(0);
                if admission.total >= open || mine >= limits.per_address {
                    return None;
                }
                *admission.per_address.entry(address.clone()).or_insert(0) += 1;
                Some(address.clone())
            }
        };
        admission.total += 1;
        Some(Place { admission: self.admission.clone(), address })
    }

    /// Runs `work` on the pool and waits for it; [`AuthError::Busy`] at once when the queue
    /// has no place for `requester`.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        requester: &Requester,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let place = self.admit(requester).ok_or(AuthError::Busy { retry_after_seconds: 1 })?;
        let (reply, result) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            let _ = reply.send(work());
        });
        self.jobs.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).send(job).map_err(|_| AuthError::Hashing)?;
        let result = result.recv().map_err(|_| AuthError::Hashing);
        drop(place);
        result
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn client(address: &str, trusted: bool) -> Requester {
        Requester::Client { address: address.into(), trusted }
    }

    #[test]
    fn admission_is_bounded_per_address_and_keeps_a_reserve() {
        let queue = HashQueue::new(1, HashQueueLimits { capacity: 4, per_address: 2, reserved: 1 });
        let a1 = queue.admit(&client("a", false)).unwrap();
        let _a2 = queue.admit(&client("a", false)).unwrap();
        assert!(queue.admit(&client("a", false)).is_none(), "per address");
        let _b1 = queue.admit(&client("b", false)).unwrap();
        assert!(queue.admit(&client("c", false)).is_none(), "the last place is reserved");
        let _c1 = queue.admit(&client("c", true)).unwrap();
        assert!(queue.admit(&client("d", true)).is_none(), "full");
        assert!(queue.admit(&Requester::Internal).is_none(), "full for everyone");
        drop(a1);
        assert!(queue.admit(&client("a", true)).is_some(), "a place given back is reused");
    }

    #[test]
    fn a_full_queue_refuses_at_once() {
        let queue = Arc::new(HashQueue::new(1, HashQueueLimits { capacity: 1, per_address: 1, reserved: 0 }));
        let (started, wait) = mpsc::channel();
        let blocker = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                queue.run(&Requester::Internal, move || {
                    started.send(()).unwrap();
                    std::thread::sleep(Duration::from_millis(300));
                    7
                })
            })
        };
        wait.recv().unwrap();
        assert!(matches!(queue.run(&client("x", true), || 1), Err(AuthError::Busy { .. })));
        assert_eq!(blocker.join().unwrap().unwrap(), 7);
        assert_eq!(queue.run(&client("x", true), || 1).unwrap(), 1);
    }
}
