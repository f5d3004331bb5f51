//! The waiter queue: FIFO with O(1) push at either end, pop, and removal of
//! any entry by its key.
//!
//! # Implementation notes
//! A doubly linked list threaded through a `Vec` of nodes, with a free list
//! for reuse, so queueing allocates only while the queue grows past its
//! largest size so far. A key carries its node's index and a generation that
//! the node bumps each time it is freed: a stale key (of a waiter already
//! served or removed) never removes the node's next occupant. A waiter that
//! gives up is removed where it stands, so a burst of timeouts costs O(1)
//! each, not a search and a shift.

const NIL: u32 = u32::MAX;

/// Names one entry of a [`Queue`]; stale once the entry leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    index: u32,
    generation: u32,
}

#[derive(Debug)]
struct Node<T> {
    generation: u32,
    value: Option<T>,
    prev: u32,
    next: u32,
}

/// A FIFO queue with removal by key.
#[derive(Debug)]
pub(crate) struct Queue<T> {
    nodes: Vec<Node<T>>,
    /// Head of the free list (linked through `next`).
    free: u32,
    head: u32,
    tail: u32,
    len: usize,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            free: NIL,
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }
}

impl<T> Queue<T> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A node for `value`, unlinked.
    fn alloc(&mut self, value: T) -> u32 {
        if self.free != NIL {
            let index = self.free;
            let node = &mut self.nodes[index as usize];
            self.free = node.next;
            node.value = Some(value);
            index
        } else {
            let index = u32::try_from(self.nodes.len()).expect("fewer than 2^32 waiters");
            assert!(index != NIL, "fewer than 2^32 - 1 waiters");
            self.nodes.push(Node {
                generation: 0,
                value: Some(value),
                prev: NIL,
                next: NIL,
            });
            index
        }
    }

    fn key(&self, index: u32) -> Key {
        Key {
            index,
            generation: self.nodes[index as usize].generation,
        }
    }

    /// Queues `value` last.
    pub(crate) fn push_back(&mut self, value: T) -> Key {
        let index = self.alloc(value);
        let node = &mut self.nodes[index as usize];
        node.prev = self.tail;
        node.next = NIL;
        match self.tail {
            NIL => self.head = index,
            tail => self.nodes[tail as usize].next = index,
        }
        self.tail = index;
        self.len += 1;
        self.key(index)
    }

    /// Queues `value` first.
    pub(crate) fn push_front(&mut self, value: T) -> Key {
        let index = self.alloc(value);
        let node = &mut self.nodes[index as usize];
        node.prev = NIL;
        node.next = self.head;
        match self.head {
            NIL => self.tail = index,
            head => self.nodes[head as usize].prev = index,
        }
        self.head = index;
        self.len += 1;
        self.key(index)
    }

    /// Unlinks node `index` and frees it.
    fn unlink(&mut self, index: u32) -> T {
        let (prev, next) = {
            let node = &self.nodes[index as usize];
            (node.prev, node.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
        let node = &mut self.nodes[index as usize];
        node.generation = node.generation.wrapping_add(1);
        node.prev = NIL;
        node.next = self.free;
        self.free = index;
        self.len -= 1;
        node.value.take().expect("a linked node holds a value")
    }

    /// Takes the first entry.
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        (self.head != NIL).then(|| self.unlink(self.head))
    }

    /// Removes the entry `key` names; `None` if it already left.
    pub(crate) fn remove(&mut self, key: Key) -> Option<T> {
        let node = self.nodes.get(key.index as usize)?;
        (node.generation == key.generation && node.value.is_some()).then(|| self.unlink(key.index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(q: &mut Queue<u32>) -> Vec<u32> {
        std::iter::from_fn(|| q.pop_front()).collect()
    }

    #[test]
    fn first_in_first_out_with_fronts_first() {
        let mut q = Queue::default();
        q.push_back(2);
        q.push_back(3);
        q.push_front(1);
        assert_eq!(q.len(), 3);
        assert_eq!(contents(&mut q), [1, 2, 3]);
        assert!(q.is_empty());
    }

    #[test]
    fn removal_by_key_anywhere_and_stale_keys_do_nothing() {
        let mut q = Queue::default();
        let keys: Vec<Key> = (0..5).map(|v| q.push_back(v)).collect();
        assert_eq!(q.remove(keys[2]), Some(2));
        assert_eq!(q.remove(keys[2]), None, "already gone");
        assert_eq!(q.remove(keys[0]), Some(0));
        assert_eq!(q.remove(keys[4]), Some(4));
        // The freed nodes are reused; the old keys must not reach the new
        // occupants.
        let reused = q.push_back(9);
        assert_eq!(q.remove(keys[4]), None);
        assert_eq!(q.remove(keys[0]), None);
        assert_eq!(contents(&mut q), [1, 3, 9]);
        assert_eq!(q.remove(reused), None);
    }

    #[test]
    fn matches_a_model_over_random_operations() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut q = Queue::default();
        let mut model: std::collections::VecDeque<(u32, Key)> = Default::default();
        let mut gone = Vec::new();
        for v in 0..20_000u32 {
            match rng.u8(0..5) {
                0 | 1 => model.push_back((v, q.push_back(v))),
                2 => model.push_front((v, q.push_front(v))),
                3 => assert_eq!(q.pop_front(), model.pop_front().map(|(v, _)| v)),
                _ if !model.is_empty() => {
                    let (v, key) = model.remove(rng.usize(0..model.len())).unwrap();
                    assert_eq!(q.remove(key), Some(v));
                    gone.push(key);
                }
                _ => {}
            }
            if let Some(key) = gone.last() {
                assert_eq!(q.remove(*key), None);
            }
            assert_eq!(q.len(), model.len());
        }
        let expected: Vec<u32> = model.iter().map(|(v, _)| *v).collect();
        assert_eq!(contents(&mut q), expected);
    }
}
