// SPDX-License-Identifier: GPL-2.0
//! A reader-writer lock over the kernel's `struct rw_semaphore`, the kernel side of
//! [`bento::sync::RwLock`](crate::sync::RwLock).
//!
//! 6.12's `kernel::sync` wraps `mutex` and `spinlock` but not `rw_semaphore`, and its
//! generic `Lock` has no shared (read) side, so this is a small lock of its own in the
//! style of `kernel::sync::lock::Lock`: pinned, initialised in place with a name and a
//! static lock class key, data reachable only through a guard.

use core::cell::UnsafeCell;
use core::marker::{PhantomData, PhantomPinned};
use core::ops::{Deref, DerefMut};

use kernel::bindings;
use kernel::init::PinInit;
use kernel::pin_init;
use kernel::prelude::pin_data;
use kernel::str::CStr;
use kernel::types::Opaque;

/// A `struct rw_semaphore` and the `T` it protects.
///
/// Any number of [`ReadGuard`]s or one [`WriteGuard`] at a time. Both sides sleep while
/// waiting, so they may be taken only where sleeping is allowed.
///
/// # Invariants
///
/// `sem` has been initialised by `__init_rwsem` with a name and a lock class key that are
/// valid forever, and has not moved since (the type is `!Unpin` and only ever handled
/// pinned). `data` is reached only through the guards: shared while the read side is held,
/// exclusive while the write side is held.
#[pin_data]
pub(crate) struct RwSemaphore<T> {
    #[pin]
    sem: Opaque<bindings::rw_semaphore>,
    /// `rw_semaphore` is self-referential (its wait list), so it must never move.
    #[pin]
    _pin: PhantomPinned,
    data: UnsafeCell<T>,
}

// SAFETY: The semaphore can be taken and released on any thread; moving the lock to another
// thread moves the `T` with it, so `T: Send` suffices (as for `std::sync::RwLock`).
unsafe impl<T: Send> Send for RwSemaphore<T> {}

// SAFETY: Through `&RwSemaphore` several threads may hold `&T` at once (readers: `T: Sync`)
// and one thread at a time `&mut T` (the writer, which may then move or drop values of `T`:
// `T: Send`). The semaphore serialises writers against everyone else.
unsafe impl<T: Send + Sync> Sync for RwSemaphore<T> {}

impl<T> RwSemaphore<T> {
    /// An initialiser of a lock holding `data`, in the lockdep class `key`, named `name`.
    pub(crate) fn new(
        data: T,
        name: &'static CStr,
        key: &'static Opaque<bindings::lock_class_key>,
    ) -> impl PinInit<Self> {
        pin_init!(Self {
            data: UnsafeCell::new(data),
            _pin: PhantomPinned,
            // SAFETY: `slot` is valid for writes while the closure runs and is pinned by
            // `pin_init!`. `name` and `key` are `'static`, as lockdep requires: it keeps both
            // pointers for as long as the class exists. (`__init_rwsem` is a function both
            // with and without PREEMPT_RT, so it needs no C helper.)
            sem <- Opaque::ffi_init(|slot| unsafe {
                bindings::__init_rwsem(slot, name.as_char_ptr(), key.get())
            }),
        })
    }

    /// Takes the read side, sleeping while a writer holds (or waits for) the lock.
    pub(crate) fn read(&self) -> ReadGuard<'_, T> {
        // SAFETY: `sem` is initialised and pinned (type invariant).
        unsafe { bindings::down_read(self.sem.get()) };
        // INVARIANT: This thread has just taken the read side.
        ReadGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Takes the write side, sleeping until no one else holds the lock.
    pub(crate) fn write(&self) -> WriteGuard<'_, T> {
        // SAFETY: `sem` is initialised and pinned (type invariant).
        unsafe { bindings::down_write(self.sem.get()) };
        // INVARIANT: This thread has just taken the write side.
        WriteGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }
}

/// Shared access to the data of a read-locked [`RwSemaphore`]; releases the read side when
/// dropped.
///
/// # Invariants
///
/// The thread that owns the guard holds the read side of `lock.sem`. (`!Send`: an
/// `rw_semaphore` is released by the task that took it.)
pub(crate) struct ReadGuard<'a, T> {
    lock: &'a RwSemaphore<T>,
    _not_send: PhantomData<*mut ()>,
}

// SAFETY: Sharing the guard only hands out `&T`, which is safe across threads iff `T: Sync`
// (as for `std::sync::RwLockReadGuard`).
unsafe impl<T: Sync> Sync for ReadGuard<'_, T> {}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: The read side is held (type invariant), so no writer can hold `&mut T`
        // while this shared reference lives.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> Drop for ReadGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: This thread holds the read side (type invariant) and gives it up exactly
        // once, here.
        unsafe { bindings::up_read(self.lock.sem.get()) };
    }
}

/// Exclusive access to the data of a write-locked [`RwSemaphore`]; releases the write side
/// when dropped.
///
/// # Invariants
///
/// The thread that owns the guard holds the write side of `lock.sem`.
pub(crate) struct WriteGuard<'a, T> {
    lock: &'a RwSemaphore<T>,
    _not_send: PhantomData<*mut ()>,
}

// SAFETY: Sharing the guard only hands out `&T`, which is safe across threads iff `T: Sync`
// (as for `std::sync::RwLockWriteGuard`).
unsafe impl<T: Sync> Sync for WriteGuard<'_, T> {}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: The write side is held (type invariant): no other reference to the data
        // exists outside this guard.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: The write side is held (type invariant) and `&mut self` makes this the only
        // reference to the data.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: This thread holds the write side (type invariant) and gives it up exactly
        // once, here.
        unsafe { bindings::up_write(self.lock.sem.get()) };
    }
}
