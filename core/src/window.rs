//! A log window: per-slot state for a contiguous range of slots starting at a base.
//! Every role keeps one; a ring buffer beats a tree map on the hot path.

use crate::types::Slot;
use alloc::collections::VecDeque;

/// Optional per-slot entries for slots `base..base + len`.
#[derive(Clone, Debug)]
pub(crate) struct SlotWindow<T> {
    base: Slot,
    items: VecDeque<Option<T>>,
}

impl<T> SlotWindow<T> {
    pub(crate) fn new(base: Slot) -> Self {
        SlotWindow {
            base,
            items: VecDeque::new(),
        }
    }

    /// The lowest slot the window can hold.
    pub(crate) fn base(&self) -> Slot {
        self.base
    }

    /// One past the highest slot stored (or `base` when empty).
    pub(crate) fn end(&self) -> Slot {
        self.base + self.items.len() as Slot
    }

    fn index(&self, slot: Slot) -> Option<usize> {
        slot.checked_sub(self.base)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < self.items.len())
    }

    pub(crate) fn get(&self, slot: Slot) -> Option<&T> {
        self.index(slot).and_then(|i| self.items[i].as_ref())
    }

    pub(crate) fn get_mut(&mut self, slot: Slot) -> Option<&mut T> {
        self.index(slot).and_then(|i| self.items[i].as_mut())
    }

    /// The entry for `slot`, growing the window up to it. `slot` must be at or
    /// above the base; callers bound how far above.
    pub(crate) fn entry(&mut self, slot: Slot) -> &mut Option<T> {
        debug_assert!(slot >= self.base, "slot below window base");
        let i = (slot - self.base) as usize;
        if i == self.items.len() {
            // The common case: the next slot after the last one held.
            self.items.push_back(None);
        } else if i > self.items.len() {
            self.items.resize_with(i + 1, || None);
        }
        &mut self.items[i]
    }

    /// Removes and returns the entry at the base, moving the base up by one.
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        self.base += 1;
        self.items.pop_front().flatten()
    }

    /// The entry at the base.
    pub(crate) fn front(&self) -> Option<&T> {
        self.items.front().and_then(Option::as_ref)
    }

    /// Drops every entry below `slot` and moves the base there.
    pub(crate) fn advance_to(&mut self, slot: Slot) {
        if slot <= self.base {
            return;
        }
        let n = (slot - self.base).min(self.items.len() as Slot) as usize;
        self.items.drain(..n);
        self.base = slot;
    }

    /// Entries at or above `from`, in slot order.
    pub(crate) fn iter_from(&self, from: Slot) -> impl Iterator<Item = (Slot, &T)> + '_ {
        let skip = from.saturating_sub(self.base).min(self.items.len() as Slot) as usize;
        let base = self.base;
        self.items
            .iter()
            .enumerate()
            .skip(skip)
            .filter_map(move |(i, e)| e.as_ref().map(|v| (base + i as Slot, v)))
    }

    /// Number of slots spanned, filled or not.
    #[cfg(test)]
    pub(crate) fn span(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_grows_pops_and_advances_in_slot_order() {
        let mut w = SlotWindow::new(10);
        *w.entry(12) = Some('c');
        *w.entry(10) = Some('a');
        assert_eq!(w.end(), 13);
        assert_eq!(w.get(11), None);
        assert_eq!(w.get(9), None);
        assert_eq!(
            w.iter_from(0).collect::<alloc::vec::Vec<_>>(),
            [(10, &'a'), (12, &'c')]
        );
        assert_eq!(w.pop_front(), Some('a'));
        assert_eq!(w.base(), 11);
        w.advance_to(100);
        assert_eq!((w.base(), w.span(), w.get(12)), (100, 0, None));
    }

    #[test]
    fn advancing_from_a_nonzero_base_keeps_the_right_entries() {
        let mut w = SlotWindow::new(10);
        for s in 10..16 {
            *w.entry(s) = Some(s);
        }
        w.advance_to(13);
        assert_eq!(
            w.iter_from(0)
                .map(|(s, _)| s)
                .collect::<alloc::vec::Vec<_>>(),
            [13, 14, 15]
        );
    }
}
