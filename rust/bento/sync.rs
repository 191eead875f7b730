// SPDX-License-Identifier: GPL-2.0
//! Locks and shared ownership: [`Mutex`], [`RwLock`] and [`Arc`], the `sync` service.
//!
//! A file system does its own locking (every operation takes `&self` and may run on many
//! threads at once), with these types instead of `std`'s or the kernel's.
//!
//! # Creating locks
//!
//! Kernel locks are pinned and initialized in place; the kernel backend boxes them, so a
//! bento lock is an ordinary movable value and creating one **allocates**: like every
//! allocation in bento it is fallible and returns [`Result`] (see
//! [`collections`](crate::collections) for why). Create locks with the
//! [`new_mutex!`](crate::new_mutex) and [`new_rwlock!`](crate::new_rwlock) macros: in the
//! kernel each call site is its own lockdep class, so lockdep can tell an inode lock from
//! a bitmap lock. [`Mutex::new`] puts all its locks in one class (and [`RwLock::new`] all
//! its locks in another), which makes lockdep report nesting any two of them as recursive
//! locking; use them only for locks that never nest with another of their kind.
//!
//! ```
//! use bento::sync::{Arc, Mutex, RwLock};
//! use bento::{new_mutex, new_rwlock};
//!
//! struct Fs {
//!     next_ino: Mutex<u64>,
//!     names: RwLock<bento::collections::Vec<u8>>,
//! }
//!
//! # fn main() -> bento::Result {
//! let fs = Arc::new(Fs {
//!     next_ino: new_mutex!(2)?,
//!     names: new_rwlock!(bento::collections::Vec::new())?,
//! })?;
//! std::thread::scope(|s| {
//!     for _ in 0..4 {
//!         let fs = fs.clone();
//!         s.spawn(move || *fs.next_ino.lock() += 1);
//!     }
//! });
//! assert_eq!(*fs.next_ino.lock(), 6);
//! fs.names.write().extend_from_slice(b"x")?;
//! assert_eq!(fs.names.read().len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Semantics common to both builds
//!
//! - Both locks sleep while waiting (kernel `mutex` and `rw_semaphore`): they may be held
//!   across I/O and allocation, but not taken in atomic context. Neither is recursive:
//!   locking a `Mutex` twice on one thread, or taking a read lock while holding the write
//!   lock, deadlocks; so may taking a read lock twice on one thread (a waiting writer
//!   blocks new readers).
//! - Guards unlock when dropped and cannot be sent to another thread.
//! - There is no poisoning: a panic is a `BUG` in the kernel, and in userspace a lock
//!   whose holder panicked is simply unlocked (the data is as the holder left it).
//! - The atomics of [`core::sync::atomic`] work in both builds and are re-exported as
//!   [`atomic`].
//!
//! # Backends
//!
//! Userspace: `std::sync::{Mutex, RwLock, Arc}`. Kernel: `Pin<KBox<kernel::sync::Mutex<T>>>`
//! (a `struct mutex`), `Pin<KBox<..>>` of an `rw_semaphore` lock written by bento (6.12 has
//! no abstraction for it), and `kernel::sync::Arc`; every allocation with `GFP_KERNEL`. In
//! the kernel a lock class is a static `lock_class_key` emitted at the macro's call site
//! (the kernel's `static_lock_class!` pattern), named `file:line` or by the given name.

#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use core::fmt;
use core::ops::{Deref, DerefMut};
#[cfg(kernel)]
use core::pin::Pin;

#[cfg(kernel)]
use kernel::{
    alloc::{flags::GFP_KERNEL, KBox},
    init::InPlaceInit,
    str::CStr,
    types::Opaque,
};

#[cfg(not(kernel))]
use crate::collections::alloc_point;
#[cfg(kernel)]
use crate::errno::Errno;
use crate::errno::Result;
#[cfg(kernel)]
use crate::kernel_backend::rwsem;

pub use core::sync::atomic;

/// A lockdep class: one per [`new_mutex!`](crate::new_mutex) or
/// [`new_rwlock!`](crate::new_rwlock) call site, named after it.
///
/// Only the macros create these; in the userspace build it just records the name.
#[cfg(not(kernel))]
#[doc(hidden)]
pub struct LockClass {
    name: &'static str,
}

#[cfg(not(kernel))]
impl LockClass {
    #[doc(hidden)]
    pub const fn __new(name: &'static str) -> LockClass {
        LockClass { name }
    }

    /// The name of the class: the one given to the macro, or `file:line`.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// A lockdep class: one per [`new_mutex!`](crate::new_mutex) or
/// [`new_rwlock!`](crate::new_rwlock) call site, named after it.
///
/// Only the macros create these, in `static`s: lockdep takes only lock class keys in
/// static storage. A class holds a key for each kind of lock, so that a `mutex` and an
/// `rw_semaphore` never share a lockdep class; a call site uses one of them.
#[cfg(kernel)]
#[doc(hidden)]
pub struct LockClass {
    mutex_key: kernel::sync::LockClassKey,
    rwsem_key: Opaque<kernel::bindings::lock_class_key>,
    name: &'static CStr,
}

#[cfg(kernel)]
// SAFETY: `rwsem_key` (`Opaque` is not `Sync`) is never read or written by Rust: only its
// address goes to lockdep, which synchronises its own use of the key (the kernel's
// `LockClassKey` is `Sync` for the same reason). `mutex_key` and `name` are `Sync`.
unsafe impl Sync for LockClass {}

#[cfg(kernel)]
impl LockClass {
    /// A class named `name`, which must end in a NUL (a name with an interior NUL is
    /// replaced by `bento::sync`).
    ///
    /// # Safety
    ///
    /// The result must be the initialiser of a `static`: lockdep refuses (with a warning,
    /// then turns itself off) a key outside static storage.
    #[doc(hidden)]
    pub const unsafe fn __new(name: &'static str) -> LockClass {
        LockClass {
            // SAFETY: `LockClassKey` is an `Opaque`, for which uninitialised memory is valid;
            // lockdep expects a static key it has not seen before to be just that (the
            // kernel's `static_lock_class!` makes its keys the same way).
            mutex_key: unsafe { core::mem::MaybeUninit::uninit().assume_init() },
            rwsem_key: Opaque::uninit(),
            name: match CStr::from_bytes_with_nul(name.as_bytes()) {
                Ok(name) => name,
                Err(_) => kernel::c_str!("bento::sync"),
            },
        }
    }

    /// The name of the class: the one given to the macro, or `file:line`.
    pub fn name(&self) -> &'static str {
        self.name.to_str().unwrap_or("bento::sync")
    }
}

impl fmt::Debug for LockClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The class of locks made by [`Mutex::new`] and [`RwLock::new`].
#[cfg(not(kernel))]
static DEFAULT_CLASS: LockClass = LockClass::__new("bento::sync");
#[cfg(not(kernel))]
use DEFAULT_CLASS as MUTEX_NEW_CLASS;
#[cfg(not(kernel))]
use DEFAULT_CLASS as RWLOCK_NEW_CLASS;

/// The class of locks made by [`Mutex::new`].
#[cfg(kernel)]
// SAFETY: The class is a `static`.
static MUTEX_NEW_CLASS: LockClass = unsafe { LockClass::__new("bento::sync::Mutex::new\0") };

/// The class of locks made by [`RwLock::new`].
#[cfg(kernel)]
// SAFETY: The class is a `static`.
static RWLOCK_NEW_CLASS: LockClass = unsafe { LockClass::__new("bento::sync::RwLock::new\0") };

/// Creates a [`Mutex`](crate::sync::Mutex) in a lockdep class of its own, named after the
/// call site (or `name`): `new_mutex!(value)` or `new_mutex!(value, "name")`. Evaluates to
/// `Result<Mutex<T>>` (`ENOMEM` if the lock cannot be allocated).
///
/// ```
/// # fn main() -> bento::Result {
/// let m = bento::new_mutex!(1u32, "counter")?;
/// *m.lock() += 1;
/// assert_eq!(*m.lock(), 2);
/// # Ok(())
/// # }
/// ```
#[macro_export]
macro_rules! new_mutex {
    ($value:expr $(, $name:literal)? $(,)?) => {{
        $crate::__lock_class!(__BENTO_LOCK_CLASS $(, $name)?);
        $crate::sync::Mutex::__new_in_class($value, &__BENTO_LOCK_CLASS)
    }};
}

/// Creates a [`RwLock`](crate::sync::RwLock) in a lockdep class of its own, named after
/// the call site (or `name`): `new_rwlock!(value)` or `new_rwlock!(value, "name")`.
/// Evaluates to `Result<RwLock<T>>` (`ENOMEM` if the lock cannot be allocated).
///
/// ```
/// # fn main() -> bento::Result {
/// let l = bento::new_rwlock!([0u8; 4])?;
/// l.write()[1] = 5;
/// assert_eq!(l.read()[1], 5);
/// # Ok(())
/// # }
/// ```
#[macro_export]
macro_rules! new_rwlock {
    ($value:expr $(, $name:literal)? $(,)?) => {{
        $crate::__lock_class!(__BENTO_LOCK_CLASS $(, $name)?);
        $crate::sync::RwLock::__new_in_class($value, &__BENTO_LOCK_CLASS)
    }};
}

/// Defines `static $id: LockClass`, the class of one call site.
#[cfg(not(kernel))]
#[doc(hidden)]
#[macro_export]
macro_rules! __lock_class {
    ($id:ident $(, $name:literal)?) => {
        static $id: $crate::sync::LockClass =
            $crate::sync::LockClass::__new($crate::__lock_name!($($name)?));
    };
}

/// Defines `static $id: LockClass`, the class of one call site, with its lockdep keys.
///
/// The `unsafe` block is the macro's own (`allow_internal_unsafe`, as for `module_fs!`), so
/// `new_mutex!` and `new_rwlock!` work in `#![forbid(unsafe_code)]` crates; the caller's
/// tokens (the value, the name) stay under the caller's lints.
#[cfg(kernel)]
#[doc(hidden)]
#[macro_export]
#[allow_internal_unsafe]
macro_rules! __lock_class {
    ($id:ident $(, $name:literal)?) => {
        // SAFETY: The class is a `static`, as lockdep requires of lock class keys.
        static $id: $crate::sync::LockClass = unsafe {
            $crate::sync::LockClass::__new(::core::concat!($crate::__lock_name!($($name)?), "\0"))
        };
    };
}

/// The name of a lock class: the literal given, or the call site.
#[doc(hidden)]
#[macro_export]
macro_rules! __lock_name {
    () => {
        ::core::concat!(::core::file!(), ":", ::core::line!())
    };
    ($name:literal) => {
        $name
    };
}

/// A mutual-exclusion lock protecting a `T`: `std::sync::Mutex` in userspace, the kernel's
/// `mutex` in the kernel.
///
/// Create it with [`new_mutex!`](crate::new_mutex) (or [`Mutex::new`], see the
/// [module docs](self)); [`lock`](Mutex::lock) waits for it and returns a guard that
/// derefs to the data.
pub struct Mutex<T> {
    #[cfg(not(kernel))]
    inner: std::sync::Mutex<T>,
    #[cfg(kernel)]
    inner: Pin<KBox<kernel::sync::Mutex<T>>>,
}

impl<T> Mutex<T> {
    /// A lock holding `value`, in the class shared by every lock made by `new`; fails with
    /// `ENOMEM` if the lock cannot be allocated. Prefer [`new_mutex!`](crate::new_mutex).
    pub fn new(value: T) -> Result<Mutex<T>> {
        Mutex::__new_in_class(value, &MUTEX_NEW_CLASS)
    }

    #[cfg(not(kernel))]
    #[doc(hidden)]
    pub fn __new_in_class(value: T, _class: &'static LockClass) -> Result<Mutex<T>> {
        alloc_point()?;
        Ok(Mutex {
            inner: std::sync::Mutex::new(value),
        })
    }

    #[cfg(kernel)]
    #[doc(hidden)]
    pub fn __new_in_class(value: T, class: &'static LockClass) -> Result<Mutex<T>> {
        let init = kernel::sync::Mutex::new(value, class.name, &class.mutex_key);
        Ok(Mutex {
            // Only the allocation can fail.
            inner: KBox::pin_init(init, GFP_KERNEL).map_err(|_| Errno::ENOMEM)?,
        })
    }

    /// Waits until the lock is free, takes it and returns the guard that releases it.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        MutexGuard {
            #[cfg(not(kernel))]
            inner: self
                .inner
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            #[cfg(kernel)]
            inner: self.inner.lock(),
        }
    }
}

impl<T> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex").finish_non_exhaustive()
    }
}

/// Access to the data of a locked [`Mutex`]; unlocks it when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MutexGuard<'a, T> {
    #[cfg(not(kernel))]
    inner: std::sync::MutexGuard<'a, T>,
    #[cfg(kernel)]
    inner: kernel::sync::lock::Guard<'a, T, kernel::sync::lock::mutex::MutexBackend>,
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.inner, f)
    }
}

/// A reader-writer lock protecting a `T`: `std::sync::RwLock` in userspace, an
/// `rw_semaphore` in the kernel.
///
/// Any number of [`read`](RwLock::read) guards, or one [`write`](RwLock::write) guard, at
/// a time. Create it with [`new_rwlock!`](crate::new_rwlock) (or [`RwLock::new`], see
/// the [module docs](self)).
pub struct RwLock<T> {
    #[cfg(not(kernel))]
    inner: std::sync::RwLock<T>,
    #[cfg(kernel)]
    inner: Pin<KBox<rwsem::RwSemaphore<T>>>,
}

impl<T> RwLock<T> {
    /// A lock holding `value`, in the class shared by every lock made by `new`; fails with
    /// `ENOMEM` if the lock cannot be allocated. Prefer [`new_rwlock!`](crate::new_rwlock).
    pub fn new(value: T) -> Result<RwLock<T>> {
        RwLock::__new_in_class(value, &RWLOCK_NEW_CLASS)
    }

    #[cfg(not(kernel))]
    #[doc(hidden)]
    pub fn __new_in_class(value: T, _class: &'static LockClass) -> Result<RwLock<T>> {
        alloc_point()?;
        Ok(RwLock {
            inner: std::sync::RwLock::new(value),
        })
    }

    #[cfg(kernel)]
    #[doc(hidden)]
    pub fn __new_in_class(value: T, class: &'static LockClass) -> Result<RwLock<T>> {
        let init = rwsem::RwSemaphore::new(value, class.name, &class.rwsem_key);
        Ok(RwLock {
            // Only the allocation can fail.
            inner: KBox::pin_init(init, GFP_KERNEL).map_err(|_| Errno::ENOMEM)?,
        })
    }

    /// Waits until no writer holds the lock and returns a shared guard.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        RwLockReadGuard {
            #[cfg(not(kernel))]
            inner: self
                .inner
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            #[cfg(kernel)]
            inner: self.inner.read(),
        }
    }

    /// Waits until nobody holds the lock and returns the exclusive guard.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        RwLockWriteGuard {
            #[cfg(not(kernel))]
            inner: self
                .inner
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            #[cfg(kernel)]
            inner: self.inner.write(),
        }
    }
}

impl<T> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwLock").finish_non_exhaustive()
    }
}

/// Shared access to the data of a read-locked [`RwLock`]; unlocks it when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T> {
    #[cfg(not(kernel))]
    inner: std::sync::RwLockReadGuard<'a, T>,
    #[cfg(kernel)]
    inner: rwsem::ReadGuard<'a, T>,
}

impl<T> Deref for RwLockReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.inner, f)
    }
}

/// Exclusive access to the data of a write-locked [`RwLock`]; unlocks it when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T> {
    #[cfg(not(kernel))]
    inner: std::sync::RwLockWriteGuard<'a, T>,
    #[cfg(kernel)]
    inner: rwsem::WriteGuard<'a, T>,
}

impl<T> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.inner, f)
    }
}

/// A reference-counted pointer to a shared `T`: `std::sync::Arc` in userspace,
/// `kernel::sync::Arc` in the kernel.
///
/// [`Arc::new`] allocates (fallibly); `clone` only counts a reference and never fails.
/// The value is dropped with the last reference. Shared values are immutable; put a
/// [`Mutex`] or [`RwLock`] (or atomics) inside for mutable state.
///
/// ```
/// use bento::sync::Arc;
/// # fn main() -> bento::Result {
/// let a = Arc::new(5u32)?;
/// let b = a.clone();
/// assert!(Arc::ptr_eq(&a, &b));
/// assert!(!Arc::ptr_eq(&a, &Arc::new(5)?));
/// assert_eq!(*b, 5);
/// # Ok(())
/// # }
/// ```
pub struct Arc<T> {
    #[cfg(not(kernel))]
    inner: std::sync::Arc<T>,
    #[cfg(kernel)]
    inner: kernel::sync::Arc<T>,
}

impl<T> Arc<T> {
    /// A new reference-counted `value`, or `ENOMEM`.
    #[cfg(not(kernel))]
    pub fn new(value: T) -> Result<Arc<T>> {
        alloc_point()?;
        Ok(Arc {
            inner: std::sync::Arc::new(value),
        })
    }

    /// A new reference-counted `value`, or `ENOMEM`.
    #[cfg(kernel)]
    pub fn new(value: T) -> Result<Arc<T>> {
        Ok(Arc {
            inner: kernel::sync::Arc::new(value, GFP_KERNEL).map_err(|_| Errno::ENOMEM)?,
        })
    }

    /// Whether `a` and `b` point to the same value (not merely equal values).
    pub fn ptr_eq(a: &Arc<T>, b: &Arc<T>) -> bool {
        #[cfg(kernel)]
        use kernel::sync::Arc as Inner;
        #[cfg(not(kernel))]
        use std::sync::Arc as Inner;
        Inner::ptr_eq(&a.inner, &b.inner)
    }
}

impl<T> Clone for Arc<T> {
    fn clone(&self) -> Self {
        Arc {
            inner: self.inner.clone(),
        }
    }
}

impl<T> Deref for Arc<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> AsRef<T> for Arc<T> {
    fn as_ref(&self) -> &T {
        &self.inner
    }
}

impl<T: fmt::Debug> fmt::Debug for Arc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.inner, f)
    }
}

impl<T: fmt::Display> fmt::Display for Arc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.inner, f)
    }
}

#[cfg(test)]
mod tests {
    use super::atomic::{AtomicUsize, Ordering};
    use super::*;
    use crate::collections::{fail_allocations_after, Vec};
    use crate::errno::Errno;
    use std::sync::Barrier;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn types_are_send_and_sync() {
        assert_send_sync::<Mutex<Vec<u8>>>();
        assert_send_sync::<RwLock<Vec<u8>>>();
        assert_send_sync::<Arc<Mutex<u64>>>();
        assert_send_sync::<Arc<RwLock<crate::collections::BTreeMap<u64, u64>>>>();
    }

    #[test]
    fn mutex_serializes_threads() {
        let m = new_mutex!(0u64).unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        let mut g = m.lock();
                        // A read-modify-write that loses updates without the lock.
                        let v = *g;
                        std::thread::yield_now();
                        *g = v + 1;
                    }
                });
            }
        });
        assert_eq!(*m.lock(), 4000);
        assert_eq!(format!("{m:?}"), "Mutex { .. }");
        assert_eq!(format!("{:?}", m.lock()), "4000");
    }

    #[test]
    fn mutex_is_usable_after_a_panic() {
        let m = Arc::new(Mutex::new(Vec::new()).unwrap()).unwrap();
        let m2 = m.clone();
        let r = std::thread::spawn(move || {
            let mut g = m2.lock();
            g.push(1u8).unwrap();
            panic!("holder panics");
        })
        .join();
        assert!(r.is_err());
        let mut g = m.lock();
        assert_eq!(*g, [1]);
        g.push(2).unwrap();
        drop(g);
        assert_eq!(*m.lock(), [1, 2]);

        let l = Arc::new(RwLock::new(0u32).unwrap()).unwrap();
        let l2 = l.clone();
        let r = std::thread::spawn(move || {
            *l2.write() = 7;
            let _g = l2.write();
            panic!("writer panics");
        })
        .join();
        assert!(r.is_err());
        assert_eq!(*l.read(), 7);
        *l.write() += 1;
        assert_eq!(*l.read(), 8);
    }

    #[test]
    fn rwlock_readers_share_writers_exclude() {
        let l = new_rwlock!((0u64, 0u64), "pair").unwrap();
        // Two readers hold the lock at the same time (or this barrier never opens).
        let both = Barrier::new(2);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    let g = l.read();
                    both.wait();
                    assert_eq!(g.0, g.1);
                });
            }
        });
        // Writers keep the pair equal; readers never see it torn.
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..500 {
                        let mut g = l.write();
                        g.0 += 1;
                        std::thread::yield_now();
                        g.1 += 1;
                    }
                });
            }
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..500 {
                        let g = l.read();
                        assert_eq!(g.0, g.1);
                    }
                });
            }
        });
        assert_eq!(*l.read(), (1000, 1000));
        assert_eq!(format!("{:?}", l.write()), "(1000, 1000)");
        assert_eq!(format!("{l:?}"), "RwLock { .. }");
    }

    #[test]
    fn arc_shares_and_drops_once() {
        static DROPS: AtomicUsize = AtomicUsize::new(0);
        struct Counted(u32);
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPS.fetch_add(1, Ordering::SeqCst);
            }
        }
        let a = Arc::new(Counted(3)).unwrap();
        let other = Arc::new(Counted(3)).unwrap();
        assert!(!Arc::ptr_eq(&a, &other));
        drop(other);
        assert_eq!(DROPS.load(Ordering::SeqCst), 1);
        std::thread::scope(|s| {
            for _ in 0..4 {
                let a = a.clone();
                s.spawn(move || {
                    let b = a.clone();
                    assert!(Arc::ptr_eq(&a, &b));
                    assert_eq!(b.0, 3);
                });
            }
        });
        assert_eq!(DROPS.load(Ordering::SeqCst), 1);
        assert_eq!(a.as_ref().0, 3);
        drop(a);
        assert_eq!(DROPS.load(Ordering::SeqCst), 2);
        let d = Arc::new(5).unwrap();
        assert_eq!((format!("{d}"), format!("{d:?}")), ("5".into(), "5".into()));
    }

    #[test]
    fn lock_classes_are_per_call_site() {
        fn class_of_site() -> &'static str {
            static C: LockClass = LockClass::__new(crate::__lock_name!());
            C.name()
        }
        let here = crate::__lock_name!();
        assert!(here.starts_with(file!()), "{here}");
        assert_ne!(class_of_site(), here);
        assert_eq!(crate::__lock_name!("named"), "named");
        assert_eq!(DEFAULT_CLASS.name(), "bento::sync");
        assert_eq!(format!("{DEFAULT_CLASS:?}"), "bento::sync");
        // The macros accept a trailing comma and a name.
        let _ = new_mutex!(1, "one",).unwrap();
        let _ = new_rwlock!(1,).unwrap();
    }

    #[test]
    fn constructors_fail_with_enomem() {
        let _g = fail_allocations_after(0);
        assert_eq!(Mutex::new(1u8).err(), Some(Errno::ENOMEM));
        assert_eq!(new_mutex!(1u8).err(), Some(Errno::ENOMEM));
        assert_eq!(RwLock::new(1u8).err(), Some(Errno::ENOMEM));
        assert_eq!(new_rwlock!(1u8).err(), Some(Errno::ENOMEM));
        assert_eq!(Arc::new(1u8).err(), Some(Errno::ENOMEM));
    }

    #[test]
    fn cloning_an_arc_never_allocates() {
        let a = Arc::new(1u8).unwrap();
        let _g = fail_allocations_after(0);
        let b = a.clone();
        let c = crate::collections::TryClone::try_clone(&b).unwrap();
        assert!(Arc::ptr_eq(&a, &c));
    }
}
