//! Connections per client address: one address may hold only so many at once, so a few
//! clients cannot take every slot of a global limit. IPv6 clients are counted by /64, the
//! block one subscriber usually gets, so changing addresses within it does not help.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr},
    sync::{Arc, Mutex, PoisonError},
};

/// The connections each client address holds, each at most `max`.
#[derive(Debug)]
pub struct IpSlots {
    max: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's slot; given back when dropped.
#[derive(Debug)]
pub struct IpSlot {
    slots: Arc<IpSlots>,
    key: IpAddr,
}

impl IpSlots {
    /// At most `max` connections per client address.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self { max, held: Mutex::new(HashMap::new()) })
    }

    /// The most connections one address may hold.
    pub fn max(&self) -> usize {
        self.max
    }

    /// A slot for a connection from `ip`, or None when that address holds the maximum.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let key = key_of(ip);
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(key).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(IpSlot { slots: self.clone(), key })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// The address connections are counted under: IPv4 as is (also when mapped into IPv6),
/// IPv6 by its /64.
fn key_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_at_most_max_slots_and_gets_them_back() {
        let slots = IpSlots::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = slots.try_acquire(a).unwrap();
        let _second = slots.try_acquire(a).unwrap();
        assert!(slots.try_acquire(a).is_none());
        assert!(slots.try_acquire(b).is_some(), "other addresses are not affected");
        drop(first);
        assert!(slots.try_acquire(a).is_some());
    }

    #[test]
    fn ipv6_is_counted_by_its_64_block_and_mapped_ipv4_as_ipv4() {
        let slots = IpSlots::new(1);
        let _x = slots.try_acquire("2001:db8::1".parse().unwrap()).unwrap();
        assert!(slots.try_acquire("2001:db8::2".parse().unwrap()).is_none());
        let _y = slots.try_acquire("10.0.0.1".parse().unwrap()).unwrap();
        assert!(slots.try_acquire("::ffff:10.0.0.1".parse().unwrap()).is_none());
    }
}
