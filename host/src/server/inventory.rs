//! What a project serves, reduced to what a person deploying it cares about: functions (and
//! whether their code or settings changed), routes and messaging configs. Two inventories
//! give the [`Changes`] a reload or a deploy reports.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{Project, Trigger};

/// The served parts of one project, each with a fingerprint of what makes it behave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Function name -> hash of its component and settings.
    functions: BTreeMap<String, String>,
    /// `METHOD /path` -> function name.
    routes: BTreeMap<String, String>,
    /// Messaging config name -> its pattern and bridge setting.
    channels: BTreeMap<String, String>,
    /// Website name -> its paths and a hash of its files.
    websites: BTreeMap<String, String>,
    /// `tern.yaml`'s settings as parsed (before command-line overrides).
    settings: String,
}

/// What differs from one inventory to the next; every list sorted.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Changes {
    /// Functions that did not exist.
    pub functions_added: Vec<String>,
    /// Functions whose component or settings changed.
    pub functions_replaced: Vec<String>,
    /// Functions that no longer exist.
    pub functions_removed: Vec<String>,
    /// Routes (`GET /path`) that did not exist.
    pub routes_added: Vec<String>,
    /// Routes that no longer exist.
    pub routes_removed: Vec<String>,
    /// Messaging configs that did not exist.
    pub channels_added: Vec<String>,
    /// Messaging configs whose pattern or bridge changed.
    pub channels_changed: Vec<String>,
    /// Messaging configs that no longer exist.
    pub channels_removed: Vec<String>,
    /// Websites that did not exist.
    pub websites_added: Vec<String>,
    /// Websites whose files or settings changed.
    pub websites_changed: Vec<String>,
    /// Websites that no longer exist.
    pub websites_removed: Vec<String>,
    /// Whether `tern.yaml`'s settings changed: they take effect at the next restart.
    pub settings_changed: bool,
}

impl Inventory {
    /// The inventory of `project`, as read (before command-line overrides). A component that
    /// cannot be read gets an empty hash (the load reports why).
    pub fn of(project: &Project) -> Self {
        let settings = &project.settings;
        let mut inventory = Inventory { settings: format!("{settings:?}"), ..Self::default() };
        for f in &project.functions {
            let mut hash = Sha256::new();
            // Only a regular file: a FIFO or a device named as `source` would block or
            // never end (the project's checks report it).
            if f.source.is_file() {
                hash.update(std::fs::read(&f.source).unwrap_or_default());
            }
            hash.update(format!(
                "{:?}{:?}{}{}{}",
                f.trigger, f.timeout, f.memory, f.concurrency, f.queue
            ));
            inventory.functions.insert(f.name.clone(), format!("{:x}", hash.finalize()));
            if let Trigger::Http { method, paths } = &f.trigger {
                for path in paths {
                    inventory.routes.insert(format!("{method} {path}"), f.name.clone());
                }
            }
        }
        for m in &project.messaging {
            let print = format!(
                "{} {:?} {} {} {:?} {:?}",
                m.pattern, m.matcher, m.websocket, m.require_token, m.hooks, m.options
            );
            inventory.channels.insert(m.name.clone(), print);
        }
        for w in &project.websites {
            let print = format!("{:?} {} {:?}", w.paths, w.index, w.max_age);
            inventory.websites.insert(w.name.clone(), print);
        }
        inventory
    }

    /// Adds each loaded website's file hash (`name`, hash) to what tells its versions apart.
    pub fn add_websites(&mut self, fingerprints: Vec<(String, String)>) {
        for (name, files) in fingerprints {
            if let Some(print) = self.websites.get_mut(&name) {
                print.push(' ');
                print.push_str(&files);
            }
        }
    }

    /// What changed from `self` to `next`.
    pub fn changes_to(&self, next: &Inventory) -> Changes {
        let (functions_added, functions_replaced, functions_removed) =
            diff(&self.functions, &next.functions);
        let (routes_added, _, routes_removed) = diff(&self.routes, &next.routes);
        let (channels_added, channels_changed, channels_removed) =
            diff(&self.channels, &next.channels);
        let (websites_added, websites_changed, websites_removed) =
            diff(&self.websites, &next.websites);
        Changes {
            functions_added,
            functions_replaced,
            functions_removed,
            routes_added,
            routes_removed,
            channels_added,
            channels_changed,
            channels_removed,
            websites_added,
            websites_changed,
            websites_removed,
            settings_changed: self.settings != next.settings,
        }
    }
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }
}

impl std::fmt::Display for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            return f.write_str("nothing changed");
        }
        let lists = [
            ("functions added", &self.functions_added),
            ("functions replaced", &self.functions_replaced),
            ("functions removed", &self.functions_removed),
            ("routes added", &self.routes_added),
            ("routes removed", &self.routes_removed),
            ("channels added", &self.channels_added),
            ("channels changed", &self.channels_changed),
            ("channels removed", &self.channels_removed),
            ("websites added", &self.websites_added),
            ("websites changed", &self.websites_changed),
            ("websites removed", &self.websites_removed),
        ];
        let mut parts: Vec<String> = lists
            .iter()
            .filter(|(_, items)| !items.is_empty())
            .map(|(what, items)| format!("{what}: {}", items.join(", ")))
            .collect();
        if self.settings_changed {
            parts.push("tern.yaml settings changed (they take effect at the next restart)".into());
        }
        f.write_str(&parts.join("; "))
    }
}

/// Keys only in `new`, keys in both with another value, keys only in `old`.
fn diff(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let old_keys: BTreeSet<&String> = old.keys().collect();
    let new_keys: BTreeSet<&String> = new.keys().collect();
    let added = new_keys.difference(&old_keys).map(|k| (*k).clone()).collect();
    let removed = old_keys.difference(&new_keys).map(|k| (*k).clone()).collect();
    let changed = new.iter().filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v));
    (added, changed.map(|(k, _)| k.clone()).collect(), removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn changes_name_what_was_added_replaced_and_removed() {
        let old = Inventory {
            functions: map(&[("a", "1"), ("b", "1"), ("c", "1")]),
            routes: map(&[("GET /a", "a"), ("GET /c", "c")]),
            channels: map(&[("chat", "x")]),
            websites: map(&[("www", "1")]),
            settings: "s".into(),
        };
        let new = Inventory {
            functions: map(&[("a", "1"), ("b", "2"), ("d", "1")]),
            routes: map(&[("GET /a", "a"), ("GET /d", "d")]),
            channels: map(&[("chat", "y"), ("news", "z")]),
            websites: map(&[("www", "2")]),
            settings: "s".into(),
        };
        let changes = old.changes_to(&new);
        assert_eq!(changes.functions_added, ["d"]);
        assert_eq!(changes.functions_replaced, ["b"]);
        assert_eq!(changes.functions_removed, ["c"]);
        assert_eq!(changes.routes_added, ["GET /d"]);
        assert_eq!(changes.routes_removed, ["GET /c"]);
        assert_eq!(changes.channels_changed, ["chat"]);
        assert_eq!(changes.channels_added, ["news"]);
        assert_eq!(changes.websites_changed, ["www"]);
        assert!(!changes.settings_changed);
        assert!(old.changes_to(&old).is_empty());
        assert_eq!(old.changes_to(&old).to_string(), "nothing changed");
    }
}
