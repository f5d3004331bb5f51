//! The idle queue: connections ready to hand out, in the configured order.

use std::collections::VecDeque;

use crate::config::IdleOrder;
use crate::conn::Conn;

/// Idle connections, oldest-returned first.
#[derive(Debug)]
pub(crate) struct Idle<C> {
    conns: VecDeque<Conn<C>>,
    order: IdleOrder,
}

impl<C> Idle<C> {
    pub(crate) fn new(order: IdleOrder, capacity: usize) -> Self {
        Self {
            conns: VecDeque::with_capacity(capacity),
            order,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.conns.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// The next connection to hand out: the most recently returned (LIFO)
    /// or the least (FIFO).
    pub(crate) fn pop(&mut self) -> Option<Conn<C>> {
        match self.order {
            IdleOrder::Lifo => self.conns.pop_back(),
            IdleOrder::Fifo => self.conns.pop_front(),
        }
    }

    pub(crate) fn push(&mut self, conn: Conn<C>) {
        self.conns.push_back(conn);
    }

    /// Takes every connection, oldest-returned first.
    pub(crate) fn take_all(&mut self) -> VecDeque<Conn<C>> {
        let capacity = self.conns.capacity();
        std::mem::replace(&mut self.conns, VecDeque::with_capacity(capacity))
    }

    /// Puts back what [`take_all`](Self::take_all) took and was kept, in
    /// the same order.
    pub(crate) fn restore(&mut self, kept: VecDeque<Conn<C>>) {
        debug_assert!(self.conns.is_empty());
        self.conns = kept;
    }
}
