//! Admission: which waiting tasks may run now, given free slots and the network
//! (reference C.3, C.4). Pure decisions; the service applies them.

use crate::config::TaskConfig;
use crate::task::{Mode, Network, Reason, TaskId, TaskRecord};

/// Default cap on concurrently running transfers per service (the reference's per-action
/// slot count at normal memory level).
pub(crate) const DEFAULT_MAX_RUNNING: usize = 48;

/// The kind of network the device is on, as the embedder reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum NetKind {
    None = 0,
    Wifi = 1,
    Cellular = 2,
    /// Ethernet and anything else that is neither Wi-Fi nor cellular.
    Other = 3,
}

impl NetKind {
    pub fn from_u32(v: u32) -> Option<NetKind> {
        match v {
            0 => Some(NetKind::None),
            1 => Some(NetKind::Wifi),
            2 => Some(NetKind::Cellular),
            3 => Some(NetKind::Other),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkState {
    pub online: bool,
    pub kind: NetKind,
    pub metered: bool,
    pub roaming: bool,
}

impl Default for NetworkState {
    /// Until the embedder says otherwise: online on an unmetered, non-roaming Wi-Fi.
    fn default() -> Self {
        NetworkState {
            online: true,
            kind: NetKind::Wifi,
            metered: false,
            roaming: false,
        }
    }
}

/// Whether a task may use the current network (reference C.4): ANY ignores metered and
/// roaming; WIFI needs Wi-Fi; CELLULAR accepts cellular or Wi-Fi; both check the flags.
pub fn network_allows(cfg: &TaskConfig, net: &NetworkState) -> Result<(), Reason> {
    if !net.online || net.kind == NetKind::None {
        return Err(Reason::NetworkOffline);
    }
    let flags_ok = (cfg.roaming || !net.roaming) && (cfg.metered || !net.metered);
    let ok = match cfg.network {
        Network::Any => true,
        Network::Wifi => net.kind == NetKind::Wifi && flags_ok,
        Network::Cellular => matches!(net.kind, NetKind::Wifi | NetKind::Cellular) && flags_ok,
    };
    if ok {
        Ok(())
    } else {
        Err(Reason::UnsupportedNetworkType)
    }
}

/// Where a waiting task stands in the start order (reference C.3): foreground first, then
/// smaller priority, then older, then the id to break ties. Derived `Ord` follows the field
/// order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct WaitKey {
    background: bool,
    priority: u32,
    ctime: u64,
    pub id: TaskId,
}

impl WaitKey {
    pub fn of(rec: &TaskRecord) -> WaitKey {
        WaitKey {
            background: rec.config.mode != Mode::Foreground,
            priority: rec.config.priority,
            ctime: rec.ctime,
            id: rec.id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{Action, Version};

    fn cfg(network: Network, metered: bool, roaming: bool) -> TaskConfig {
        let mut c = TaskConfig::defaults(Action::Download, Version::Api9);
        c.network = network;
        c.metered = metered;
        c.roaming = roaming;
        c
    }

    #[test]
    fn network_table_c4() {
        let wifi = NetworkState::default();
        let cell = NetworkState {
            kind: NetKind::Cellular,
            metered: true,
            roaming: true,
            ..wifi
        };
        let off = NetworkState {
            online: false,
            ..wifi
        };
        assert_eq!(
            network_allows(&cfg(Network::Any, false, false), &off),
            Err(Reason::NetworkOffline)
        );
        assert_eq!(
            network_allows(&cfg(Network::Any, false, false), &cell),
            Ok(())
        );
        assert_eq!(
            network_allows(&cfg(Network::Wifi, true, true), &cell),
            Err(Reason::UnsupportedNetworkType)
        );
        assert_eq!(
            network_allows(&cfg(Network::Wifi, false, false), &wifi),
            Ok(())
        );
        assert_eq!(
            network_allows(&cfg(Network::Cellular, false, false), &wifi),
            Ok(())
        );
        assert_eq!(
            network_allows(&cfg(Network::Cellular, false, false), &cell),
            Err(Reason::UnsupportedNetworkType)
        );
        assert_eq!(
            network_allows(&cfg(Network::Cellular, true, true), &cell),
            Ok(())
        );
    }

    #[test]
    fn wait_key_orders_by_mode_priority_age() {
        let key = |id, mode, priority, ctime| {
            let mut c = TaskConfig::defaults(Action::Download, Version::Api9);
            c.mode = mode;
            c.priority = priority;
            WaitKey::of(&TaskRecord::new(id, 1, "b", c, ctime))
        };
        let mut w = [
            key(1, Mode::Background, 0, 1),
            key(2, Mode::Foreground, 5, 2),
            key(3, Mode::Background, 0, 0),
            key(4, Mode::Foreground, 1, 3),
        ];
        w.sort();
        assert_eq!(w.iter().map(|k| k.id).collect::<Vec<_>>(), vec![4, 2, 3, 1]);
    }
}
